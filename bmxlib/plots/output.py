"""Figures as PNG: write, show in a notebook, render to bytes, check a report's files; and
the notebooks' relative paths resolved from the repository root."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.text import Text

from .style import DPI

__all__ = ["READING_WIDTH_PX", "MIN_DISPLAY_PT", "min_font_pt", "readable_text", "save",
           "publish", "png_bytes", "check_figures"]

#: Width (CSS px) of the report's content column: a figure is shown at its natural width
#: (``width × dpi`` px) up to this, scaled down to it when wider.
READING_WIDTH_PX = 1200
#: Smallest text size (points) as displayed, at the natural width or at the column width.
MIN_DISPLAY_PT = 9.0


def min_font_pt(width_in: float, *, dpi: int = DPI) -> float:
    """Smallest font size (points, in figure units) that shows as ``MIN_DISPLAY_PT``.

    A figure ``width_in`` inches wide saved at ``dpi`` is ``width_in·dpi`` px; shown
    ``shown`` CSS px wide (1 px = 1/96 in) its text is scaled by ``shown / (width_in·96)``.
    """
    shown = min(width_in * dpi, READING_WIDTH_PX)
    return MIN_DISPLAY_PT * width_in * 96.0 / shown


def readable_text(fig: Figure, *, dpi: int = DPI) -> float:
    """Raise every text of ``fig`` smaller than :func:`min_font_pt` to it; returns the floor.

    Tick labels are raised through their axis (ticks added at draw time copy the first
    tick), so the floor holds whatever the locators choose; constrained layout makes room.
    """
    floor = min_font_pt(fig.get_figwidth(), dpi=dpi)
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            for which, labels in (("major", axis.get_majorticklabels()),
                                  ("minor", axis.get_minorticklabels())):
                if labels and min(t.get_fontsize() for t in labels) < floor:
                    axis.set_tick_params(which=which, labelsize=floor)
    for text in fig.findobj(Text):
        if text.get_text() and text.get_fontsize() < floor:
            text.set_fontsize(floor)
    return floor


def save(fig: Figure, out_dir: str | Path, name: str, *, dpi: int = DPI) -> Path:
    """Write ``fig`` as ``out_dir/name.png`` (folders created, text raised to the readable
    floor of :func:`readable_text`); returns the path."""
    if not isinstance(fig, Figure):
        raise TypeError(f"fig must be a matplotlib Figure, got {type(fig).__name__}")
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"name must be a plain file stem, got {name!r}")
    path = Path(out_dir) / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    readable_text(fig, dpi=dpi)
    fig.savefig(path, dpi=dpi, facecolor="white")
    return path


def publish(fig: Figure, out_dir: str | Path, name: str, *, dpi: int = DPI) -> Path:
    """``save`` the figure and, inside IPython, display the written PNG."""
    path = save(fig, out_dir, name, dpi=dpi)
    _display_png(path.read_bytes())
    return path


def _display_png(data: bytes) -> None:
    try:
        from IPython import get_ipython
        from IPython.display import Image, display
    except ImportError:  # plain Python: nothing to show
        return
    if get_ipython() is not None:
        display(Image(data=data, format="png"))


def png_bytes(fig: Figure, *, dpi: int = DPI) -> bytes:
    """The figure rendered as PNG bytes (used by the explorer widget)."""
    buffer = io.BytesIO()
    readable_text(fig, dpi=dpi)
    fig.savefig(buffer, format="png", dpi=dpi, facecolor="white")
    return buffer.getvalue()


def check_figures(out_dir: str | Path, names: Sequence[str]) -> list[Path]:
    """Raise ``FileNotFoundError`` unless every ``out_dir/name.png`` is a non-empty PNG."""
    paths = [Path(out_dir) / f"{name}.png" for name in names]
    for path in paths:
        if not path.is_file() or path.stat().st_size < 1000:
            raise FileNotFoundError(f"figure {path} is missing or empty")
        if path.read_bytes()[:8] != b"\x89PNG\r\n\x1a\n":
            raise ValueError(f"figure {path} is not a PNG file")
    return paths
