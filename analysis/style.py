"""The figure style every analysis figure shares: theme, exposure colors, KL axes, saving.

python -c "from analysis.style import pyplot; pyplot()"      # the Agg backend and the paper theme

One place for it so r = 0.5 has the same color, and a KL axis the same look, in every figure.
"""

from __future__ import annotations

from pathlib import Path

from harness.runs.runinfo import ST, TS

KL_LABEL = {ST: r"KL($p_S\,\|\,p_T$)", TS: r"KL($p_T\,\|\,p_S$)"}
DIRECTION_STYLE = {ST: dict(color="#1f4e99", ls="-", marker="o"),
                   TS: dict(color="#d1781c", ls="--", marker="s")}
EXPOSURE_CMAP = "viridis_r"  # dark = full reference, light = none
DIFFICULTY_CMAP = "magma"  # eval suites: light = easy, dark = hard
FIG_WIDTH = 7.0  # inches: a two-column paper's full text width


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed), with the paper theme."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(context="paper", style="whitegrid", font_scale=1.0)
    plt.rcParams.update({"axes.titlesize": 10, "axes.titleweight": "bold", "legend.fontsize": 8,
                         "legend.title_fontsize": 8, "savefig.dpi": 200,
                         "pdf.fonttype": 42})  # TrueType in the PDF: venues reject Type 3 fonts
    return plt


def exposure_colors(exposures: list[float]) -> dict[float, tuple]:
    """One color per exposure on a fixed 0..1 scale, so r = 0.5 has the same color in every figure."""
    import matplotlib

    cmap = matplotlib.colormaps[EXPOSURE_CMAP]
    return {r: cmap(0.1 + 0.85 * r) for r in exposures}


def subtitle(ax, text: str) -> None:
    """A small grey line between an axes' title (set with pad=14) and the plot: what is averaged."""
    ax.text(0.0, 1.015, text, transform=ax.transAxes, fontsize=7.5, va="bottom", ha="left", color="0.35")


def kl_axis(ax) -> None:
    """KL is >= 0: the axis starts at 0 (a CI reaching below is cut there), plain tick labels."""
    from matplotlib.ticker import FuncFormatter

    ax.set_ylim(bottom=0.0)
    # No "1e-5" offset text above the axes: it would sit on the subtitle.
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.2g}"))


def stem_of(out: Path) -> Path:
    """`fig.png`, `fig.pdf` or `fig` -> `fig` (only these: group suffixes contain dots)."""
    return out.with_suffix("") if out.suffix in (".png", ".pdf") else out


def figure_paths(out: Path) -> tuple[Path, Path]:
    stem = stem_of(out)
    return stem.with_name(stem.name + ".png"), stem.with_name(stem.name + ".pdf")


def save(fig, out: Path) -> list[Path]:
    png, pdf = figure_paths(out)
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, bbox_inches="tight")
    fig.savefig(pdf, bbox_inches="tight")
    return [png, pdf]


def difficulty_colors(suites: list[str]) -> dict[str, tuple]:
    """One color per eval suite, easy -> hard in the order given: light orange to dark purple
    (a scale apart from the exposures' viridis, so a suite is never read as an r)."""
    import matplotlib

    cmap = matplotlib.colormaps[DIFFICULTY_CMAP]
    n = max(1, len(suites) - 1)
    return {s: cmap(0.75 - 0.6 * i / n) for i, s in enumerate(suites)}
