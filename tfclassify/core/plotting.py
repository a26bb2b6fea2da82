"""Pictures: matplotlib figures drawn by its Agg renderer, saved atomically.

matplotlib is an optional extra (`pip install 'tfclassify[plot]'`). Figures are made
as `matplotlib.figure.Figure` objects, never through `pyplot`: no window opens, no
backend is switched for the whole process (a notebook keeps its own), and a figure
is freed when its last reference goes. Saving renders with Agg, whatever backend
the process has.
"""

from __future__ import annotations

import io
import os
from typing import Any

from tfclassify.core import fileio
from tfclassify.core.errors import MissingDependencyError, OptionsError

__all__ = ["check_output", "figure", "require", "save"]


def require() -> None:
    """Raises MissingDependencyError, naming the extra, when matplotlib is missing.

    Called before slow work (loading a model) that would end in a picture.
    """
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise MissingDependencyError("matplotlib", "plot", "matplotlib") from None


def _formats() -> dict[str, str]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    return FigureCanvasAgg.get_supported_filetypes()


def check_output(path: str | os.PathLike) -> str:
    """The picture format of `path`, from its suffix (`png`, `svg`, `pdf`, ...).

    Raises:
      MissingDependencyError: no matplotlib.
      OptionsError: a suffix matplotlib cannot write.
    """
    require()
    fmt = os.path.splitext(os.fspath(path))[1].lower().lstrip(".")
    formats = _formats()
    if fmt not in formats:
        raise OptionsError(
            f"cannot write a picture to {os.fspath(path)!r}: the file name must end in one of "
            f"{', '.join('.' + f for f in sorted(formats))}"
        )
    return fmt


def figure(width: float, height: float, dpi: int) -> Any:
    """A new `matplotlib.figure.Figure` of `width` x `height` inches at `dpi`.

    Raises:
      MissingDependencyError: no matplotlib.
    """
    require()
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=dpi)


def save(fig: Any, path: str | os.PathLike) -> None:
    """Writes `fig` to `path` (format from its suffix) at the figure's own size and
    dpi, under a temporary name renamed when complete.

    Raises:
      OptionsError: a suffix matplotlib cannot write.
    """
    fmt = check_output(path)
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=fig.dpi)
    fileio.atomic_write_bytes(os.fspath(path), buffer.getvalue())
