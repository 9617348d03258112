"""Figures as PNG: write, show in a notebook, render to bytes, check a report's files; and
the notebooks' relative paths resolved from the repository root."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

from matplotlib.figure import Figure

from .style import DPI

__all__ = ["save", "publish", "png_bytes", "check_figures"]


def save(fig: Figure, out_dir: str | Path, name: str, *, dpi: int = DPI) -> Path:
    """Write ``fig`` as ``out_dir/name.png`` (folders created); returns the path."""
    if not isinstance(fig, Figure):
        raise TypeError(f"fig must be a matplotlib Figure, got {type(fig).__name__}")
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"name must be a plain file stem, got {name!r}")
    path = Path(out_dir) / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
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
