"""What a run is called in tables and legends: its method key (the run name without its seed)
and its label, from the registered components' labels.

python -c "from harness.runs.naming import method_label; print(method_label('atesd_antisd', None, False, 0))"
"""

from __future__ import annotations

from harness.config.schema import run_name
from harness.registry import components


def method_key(method: str, exposure_source: str, exposure: float, tag: str | None) -> str:
    """The run name without its seed: base | <method>[-<tag>]-r<exposure> | <method>[-<tag>]."""
    return run_name(method, exposure_source, exposure, 0, tag).removesuffix("-s0")


def method_label(method: str | None, tag: str | None, fixed: bool, exposure: float) -> str:
    """The row label readers see in tables and legends (the components' labels,
    harness/registry.py: `atesd` reads "ATESD", `atesd_antisd` "ATESD + AntiSD")."""
    suffix = f" [{tag}]" if tag else ""
    sources, losses = labels_by_part("source"), labels_by_part("loss")
    if method == "base":
        return "Base model"
    if fixed:
        if method == "opsd" and exposure == 1.0 and not tag:
            return "OPSD (r = 1)"
        # a loss at a fixed r (`antisd`), or another source that takes exposure= (its label)
        name = "Fixed" if method == "opsd" else {**sources, **losses}.get(method or "", str(method))
        return f"{name} r = {exposure:g}{suffix}"
    # compositions (harness.config.schema.method_of): `atesd_antisd` reads "ATESD + AntiSD"
    for source, s_label in sources.items():  # parts may hold "_" themselves (per_problem)
        loss = (method or "").removeprefix(source + "_")
        if loss != method and loss in losses:
            return f"{s_label} + {losses[loss]}{suffix}"
    return {**sources, **losses}.get(method or "", str(method)) + suffix


def labels_by_part(kind: str) -> dict[str, str]:
    """method-name part -> label of the registered components of a kind (`atesd` -> ATESD)."""
    return {c.part: c.label for c in components(kind) if c.part}
