"""Progress of a long pass: a bar at a terminal, lines in a log, nothing when quiet.

One `Progress` per pass (a conversion's scan or write, an inference, a variant
measured, a benchmark run), used as a context:

    with Progress("scan", total=len(files), show_bytes=True) as bar:
        for f in files:
            bar.update(1, nbytes=size(f))

What it shows depends on where stderr goes:

* a terminal, or a notebook: a tqdm bar (TFDS's choice too) redrawn in place, with
  images/s (and MB/s);
* anything else (a pipe, a log file), where each redraw of a bar would be kept, the
  last one twice: a plain line every `LOG_INTERVAL` seconds, and one when the pass
  ends;
* `quiet`: nothing.

`ProcessBar` draws one for work that runs in this process but holds only a token (a
string, which pickles anywhere): Beam DoFns, which the local runner runs here. Where
they run in other processes (a multi-process or remote runner) no bar is drawn.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any, TextIO

__all__ = ["LOG_INTERVAL", "Progress", "ProcessBar", "advance", "given_or_new"]

# Seconds between two lines in a log: often enough to see a job move, rarely enough
# that a long one does not fill the log.
LOG_INTERVAL = 15.0


def _draws_bars(file: TextIO) -> bool:
    """Whether a bar can redraw itself in place on `file`: a terminal, or a notebook
    (where tqdm.auto draws a widget instead)."""
    from tqdm.std import tqdm as std

    with warnings.catch_warnings():
        # In a notebook without ipywidgets it warns, then gives the plain bar: lines here.
        warnings.simplefilter("ignore")
        from tqdm.autonotebook import tqdm as auto

    if auto is not std:  # a notebook's widget
        return True
    try:
        return file.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class Progress:
    """The progress of one pass over `total` items (None: unknown).

    Args:
      desc: what the pass is (`scan`, `infer pipelined`...), the start of each line.
      total: items the pass will do; None if unknown (settable later: `total`).
      quiet: show nothing.
      unit: what an item is, as in `img/s`.
      leave: keep the bar when done, or in a log print a last line; False when the
        caller prints its own line about the pass.
      initial: items already done before this pass (a resumed scan): counted, not
        in the rate.
      show_bytes: show MB/s of the bytes `update` is given.
      interval: seconds between two lines in a log.
      file: where it goes (default: stderr).
      clock: seconds counter (injectable for tests).
    """

    def __init__(
        self,
        desc: str,
        total: int | None = None,
        *,
        quiet: bool = False,
        unit: str = "img",
        leave: bool = True,
        initial: int = 0,
        show_bytes: bool = False,
        interval: float = LOG_INTERVAL,
        file: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.desc, self.unit, self._leave = desc, unit, leave
        self._file = sys.stderr if file is None else file
        self._total, self._n, self._initial = total, initial, initial
        self._bytes, self._show_bytes = 0, show_bytes
        self._clock, self._interval = clock, interval
        self._start = self._last = clock()
        self._lock = threading.Lock()
        self._closed = quiet
        self._bar: Any = None
        self.mode = "quiet" if quiet else ("bar" if _draws_bars(self._file) else "log")
        if self.mode == "bar":
            from tqdm.auto import tqdm

            self._bar = tqdm(
                total=total,
                desc=desc,
                unit=unit,
                initial=initial,
                leave=leave,
                file=self._file,
                mininterval=0.5,
                dynamic_ncols=True,
            )

    @property
    def n(self) -> int:
        """Items done so far."""
        return self._n

    @property
    def total(self) -> int | None:
        """Items the pass will do; None if unknown."""
        return self._total

    @total.setter
    def total(self, total: int | None) -> None:
        with self._lock:
            self._total = total
            if self._bar is not None and not self._closed:
                self._bar.total = total
                self._bar.refresh()

    def update(self, n: int = 1, nbytes: int = 0) -> None:
        """Counts `n` more items done (and `nbytes` more bytes, for MB/s); any thread."""
        with self._lock:
            self._n += n
            self._bytes += nbytes
            if self._closed:
                return
            now = self._clock()
            if self._bar is not None:
                if self._show_bytes:
                    self._bar.set_postfix_str(self._mb_per_s(now), refresh=False)
                self._bar.update(n)
            elif now - self._last >= self._interval and not self._complete():
                self._last = now  # a complete pass's line is the last one, at close
                self._say(now, final=False)

    def close(self, completed: bool = True) -> None:
        """Ends the pass: the bar is left as it is (`leave`), or in a log its last line
        is printed, once, when `completed` and `leave`. Later calls do nothing."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._bar is not None:
                if self._show_bytes:
                    self._bar.set_postfix_str(self._mb_per_s(self._clock()), refresh=False)
                self._bar.close()
            elif completed and self._leave:
                self._say(self._clock(), final=True)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        # A pass cut short says nothing more: the error that ended it follows.
        self.close(completed=exc_type is None)

    def _complete(self) -> bool:
        return self._total is not None and self._n >= self._total

    def _mb_per_s(self, now: float) -> str:
        return f"{self._bytes / max(now - self._start, 1e-9) / 1e6:.1f} MB/s"

    def _say(self, now: float, final: bool) -> None:
        elapsed = now - self._start
        done = f"{self._n}/{self._total}" if self._total is not None else f"{self._n}"
        done += f" {self.unit}"
        if self._total and not final:
            done += f" ({100 * self._n / self._total:.0f}%)"
        rate = (self._n - self._initial) / elapsed if elapsed > 0 else 0.0
        parts = [f"{self.desc}: {done}", f"{rate:.1f} {self.unit}/s"]
        if self._show_bytes:
            parts.append(self._mb_per_s(now))
        parts.append(f"{elapsed:.1f} s")
        print(", ".join(parts), file=self._file, flush=True)


@contextlib.contextmanager
def given_or_new(
    given: Progress | None, desc: str, total: int | None = None, *, quiet: bool = False
) -> Iterator[Progress]:
    """`given` (a caller's bar, which the caller closes; its total set if it had none),
    or a new `Progress(desc, total, quiet=quiet)` closed on exit."""
    if given is not None:
        if given.total is None and total is not None:
            given.total = total
        yield given
        return
    with Progress(desc, total, quiet=quiet) as bar:
        yield bar


# ---------------------------------------------------------------- across a process

_OPEN: dict[str, ProcessBar] = {}


class ProcessBar:
    """A `Progress` drawn by this process for work that holds only its `token`.

    Code that cannot be handed the bar itself (a Beam DoFn is pickled, and may run in
    another process or on another machine) is handed the token and calls
    `advance(token, n)`. Where that runs in this process (Beam's local runner,
    in-process), the bar moves; anywhere else `advance` finds no bar and does
    nothing. The bar is drawn at the first advance here, so a pass whose work runs
    elsewhere draws none, and it is closed when its total is reached or this
    context ends.

    Args: as `Progress` takes them; `total` may also come with `advance`.
    """

    def __init__(
        self,
        desc: str,
        total: int | None = None,
        *,
        quiet: bool = False,
        unit: str = "img",
        show_bytes: bool = False,
    ) -> None:
        self.token = f"{desc}-{secrets.token_hex(8)}"
        self.total = total
        self._kw = {"quiet": quiet, "unit": unit, "show_bytes": show_bytes}
        self._desc, self._pid = desc, os.getpid()
        self._bar: Progress | None = None
        self._lock = threading.Lock()

    def __enter__(self) -> ProcessBar:
        _OPEN[self.token] = self
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        _OPEN.pop(self.token, None)
        with self._lock:
            if self._bar is not None:
                self._bar.close(completed=exc_type is None)

    def advance(self, n: int, nbytes: int = 0, total: int | None = None) -> None:
        """Counts `n` items done here (see the module `advance`)."""
        if os.getpid() != self._pid:  # a forked worker's copy: its parent draws
            return
        with self._lock:
            if self._bar is None:
                self._bar = Progress(self._desc, self.total or total, **self._kw)
            bar = self._bar
        if bar.total is None and total is not None:
            bar.total = total
        bar.update(n, nbytes)
        if bar.total is not None and bar.n >= bar.total:
            bar.close()


def advance(token: str | None, n: int = 1, nbytes: int = 0, total: int | None = None) -> None:
    """Counts `n` items (and `nbytes` bytes) done on the `ProcessBar` of `token`, if that
    bar is open in this process; else (None, another process) does nothing.

    Args:
      token: a `ProcessBar.token`, or None for no bar.
      n / nbytes: items and bytes just done.
      total: the pass's total, when the caller knows it and the bar does not yet.
    """
    bar = _OPEN.get(token) if token is not None else None
    if bar is not None:
        bar.advance(n, nbytes, total)
