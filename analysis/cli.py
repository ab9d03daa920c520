"""Command-line plumbing shared by the analysis commands: common flags and one-line errors.

python -m analysis.figures --help      # every command takes --results, --group-by, --refresh

Imported by each command's main(); it reads no run folder itself.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

DEFAULT_RESULTS = "results/runs"


class AnalysisError(Exception):
    """Bad input (no results, nothing finished, mixed configs): printed as one line, exit 2."""


def add_common_args(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--results", default=DEFAULT_RESULTS, help="results root holding run folders")
    ap.add_argument("--group-by", default="", help="comma-separated config keys (e.g. task.val_size): "
                    "one output per value when runs mix task/eval configs")
    ap.add_argument("--refresh", action="store_true", help="ignore the parquet cache")


def group_keys(text: str) -> list[str]:
    return [k.strip() for k in text.split(",") if k.strip()]


def cli(main: Callable[[list[str]], None]) -> None:
    """Run main(argv); bad input (AnalysisError) becomes one line on stderr and exit 2, no traceback."""
    try:
        main(sys.argv[1:])
    except AnalysisError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
