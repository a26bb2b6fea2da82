"""Figures for tfclassify's pictures: matplotlib (the `plot` extra), drawn by Agg.

No pyplot: a figure belongs to whoever holds it (no global list of open figures
growing in a notebook or a long job), and its own Agg canvas draws it whatever
backend the session has, with or without a display. A notebook shows a figure
through its `_repr_png_`: IPython's own figure display is wired up by pyplot's
inline backend, which a session that never touched pyplot has not started.
"""

from __future__ import annotations

import functools
import io
import os
from typing import Any

from tfclassify.core import fileio
from tfclassify.core.errors import MissingDependencyError, OptionsError

__all__ = ["new_figure", "picture_format", "require_matplotlib", "save_figure"]


def require_matplotlib() -> None:
    """Raises MissingDependencyError (naming the `plot` extra) without matplotlib:
    a command checks before its long work, not after."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise MissingDependencyError("matplotlib", "plot", "matplotlib") from None


def new_figure(width: float, height: float, dpi: int = 100) -> Any:
    """A matplotlib `Figure` of `width` x `height` inches on an Agg canvas.

    Raises:
      MissingDependencyError: matplotlib is not installed.
    """
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    figure = _figure_class()(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(figure)
    return figure


@functools.cache
def _figure_class() -> type:
    """matplotlib's `Figure`, with the PNG view a notebook displays."""
    from matplotlib.figure import Figure

    class PictureFigure(Figure):
        def _repr_png_(self) -> bytes:
            buffer = io.BytesIO()
            self.savefig(buffer, format="png")
            return buffer.getvalue()

    return PictureFigure


def picture_format(path: str | os.PathLike) -> str:
    """The format `path`'s extension names (`png`, `svg`, `pdf`, ...).

    Raises:
      MissingDependencyError: matplotlib is not installed.
      OptionsError: an extension matplotlib cannot write (the message lists those it can).
    """
    require_matplotlib()
    from matplotlib.backend_bases import FigureCanvasBase

    path = os.fspath(path)
    fmt = os.path.splitext(path)[1].lstrip(".").lower()
    formats = FigureCanvasBase.get_supported_filetypes()
    if fmt not in formats:
        raise OptionsError(
            f"cannot write a picture to {path!r}: end its name in one of "
            f"{', '.join('.' + f for f in sorted(formats))}"
        )
    return fmt


def save_figure(figure: Any, path: str | os.PathLike) -> str:
    """Writes `figure` to `path` (atomically) in the format its extension names.

    Returns:
      `path` as a string.

    Raises:
      OptionsError: an extension matplotlib cannot write (`picture_format`).
    """
    path = os.fspath(path)
    buffer = io.BytesIO()
    figure.savefig(buffer, format=picture_format(path))
    fileio.atomic_write_bytes(path, buffer.getvalue())
    return path
