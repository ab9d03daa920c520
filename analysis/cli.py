"""Command-line plumbing shared by the analysis commands: common flags and one-line errors.

python -m analysis.figures --help      # every command takes --results, --group-by, --refresh

Imported by each command's main(); it reads no run folder itself.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

from harness.runs.identity import DEFAULT_RESULTS  # the one default results root; re-exported


class AnalysisError(Exception):
    """Bad input (no results, nothing finished, mixed configs): printed as one line, exit 2."""


def add_common_args(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--results", default=DEFAULT_RESULTS, help="results root holding run folders")
    ap.add_argument("--group-by", default="", help="comma-separated config keys (e.g. task.val_size): "
                    "one output per value when runs mix task/eval configs")
    ap.add_argument("--refresh", action="store_true", help="ignore the parquet cache")


def parse(argv: list[str], doc: str, out: str | None = None, **flags: str) -> argparse.Namespace:
    """A command's flags from argv: the common ones (add_common_args), --out with its help when
    out is given, and --<flag> (underscores as dashes) with its help for each keyword; the
    command's description is doc's first line."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    add_common_args(ap)
    if out is not None:
        ap.add_argument("--out", help=out)
    for name, text in flags.items():
        ap.add_argument("--" + name.replace("_", "-"), help=text)
    return ap.parse_args(argv)


def emit(text: str, out: str | None) -> None:
    """Print a command's Markdown report; also write it to `out` (its folder made) when given."""
    print(text)
    if out:
        from pathlib import Path

        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text + "\n")


def group_keys(text: str) -> list[str]:
    return [k.strip() for k in text.split(",") if k.strip()]


def cli(main: Callable[[list[str]], None]) -> None:
    """Run main(argv); bad input (AnalysisError) becomes one line on stderr and exit 2, no traceback."""
    try:
        main(sys.argv[1:])
    except AnalysisError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


def each_group(groups: Sequence[tuple[str, Any]], results: str,
               write: Callable[[str, Any], list[str]]) -> None:
    """write(label, runs) for each comparable group, printing the lines it returns. A group
    that raises AnalysisError is skipped with its reason (one empty group does not stop the
    others); AnalysisError when every group was skipped."""
    skipped = []
    for label, runs in groups:
        try:
            lines = write(label, runs)
        except AnalysisError as err:
            skipped.append(f"{label or results}: {err}")
            continue
        for line in lines:
            print(line)
    if len(skipped) == len(groups):
        raise AnalysisError("; ".join(skipped))
    for line in skipped:
        print(f"skipped {line}")
