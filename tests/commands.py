"""The commands (`python -m tfclassify.X`) run as users run them, in a new process or
in this one.

A new process pays TensorFlow's import (seconds) each time: each command keeps one
test that starts it for real (`run_process`); the tests that check only exit status
and messages run it in this interpreter (`run_in_process`), which executes the same
module as `__main__` with the same arguments.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import runpy
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator

# Loggers whose level or handlers a command's start-up may change for its process.
_LOGGERS = ("", "absl", "tensorflow")
# absl's flag registry: `FlagValues.__dict__` entries (absl keeps its state there).
_REGISTRY = (
    "__flags",
    "__hiddenflags",
    "__flags_by_module",
    "__flags_by_module_id",
    "__key_flags_by_module",
    "__flags_parsed",
    "__unparse_flags_called",
)


class Terminal(io.StringIO):
    """A captured stream that says it is a terminal, as a user's stderr is: progress
    bars draw on it (`contextlib.redirect_stderr(Terminal())`)."""

    def isatty(self) -> bool:
        return True


def last_lines(err: str, desc: str) -> list[str]:
    """The lines a pass `desc` prints in a log when it ends (`desc: N/N img, ...`;
    without a `(NN%)`, which only the lines on the way have)."""
    return [line for line in err.splitlines() if line.startswith(f"{desc}: ") and "%)" not in line]


def run_process(module: str, *args: str, **kw) -> subprocess.CompletedProcess:
    """`python -m module args` in a new interpreter."""
    return subprocess.run(
        [sys.executable, "-m", module, *args], capture_output=True, text=True, **kw
    )


@contextlib.contextmanager
def _flags_of_a_new_process() -> Iterator[None]:
    """absl's global flags as a new interpreter has them while a script runs: absl's
    own, unparsed. Flags other modules defined on import are hidden, or the script's
    would clash with them; all come back afterwards. (The commands parse flags of
    their own; the scripts in benchmarks/ define absl's global ones.)"""
    import absl.logging  # noqa: F401  (defines its flags: they must be in the copy)
    from absl import app, flags

    app.define_help_flags()
    fv = flags.FLAGS
    # Copies of the registry's containers (the flags themselves are shared): hiding
    # and defining flags changes them in place.
    saved = {key: _copy(fv.__dict__[key]) for key in _REGISTRY}
    for module, defined in list(fv.flags_by_module_dict().items()):
        if not module.startswith("absl."):
            for flag in list(defined):
                for name in {flag.name, flag.short_name} - {None}:
                    if name in fv:
                        delattr(fv, name)
    fv.unparse_flags()
    try:
        yield
    finally:
        fv.unparse_flags()
        fv.__dict__.update(saved)


def _copy(value: object) -> object:
    if isinstance(value, dict):
        return {k: list(v) if isinstance(v, list) else v for k, v in value.items()}
    return set(value) if isinstance(value, set) else value


def run_in_process(module: str, *args: str) -> subprocess.CompletedProcess:
    """`python -m module args` in this interpreter, with what it prints captured.

    The exit status is its `SystemExit` code; an exception it lets escape (a
    traceback, for a user) propagates. Process-wide state a command sets for itself
    (argv, environment, absl's flags, log levels and handlers) is restored.
    """
    return _in_process(
        lambda: runpy.run_module(module, run_name="__main__", alter_sys=True),
        [module, *args],  # runpy puts the module's file first, as `-m` does
        [sys.executable, "-m", module, *args],
    )


def run_script_in_process(path: str, *args: str) -> subprocess.CompletedProcess:
    """`python path args` in this interpreter, as `run_in_process` runs a module."""
    return _in_process(
        lambda: runpy.run_path(path, run_name="__main__"),
        [path, *args],
        [sys.executable, path, *args],
    )


def _in_process(
    run: Callable[[], object], argv: list[str], command: list[str]
) -> subprocess.CompletedProcess:
    saved_argv, saved_env = sys.argv, dict(os.environ)
    saved_logs = {
        n: (logging.getLogger(n).level, logging.getLogger(n).handlers[:]) for n in _LOGGERS
    }
    out, err = io.StringIO(), io.StringIO()
    sys.argv = argv
    code: int | str | None = 0
    try:
        with (
            _flags_of_a_new_process(),
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
            warnings.catch_warnings(),
        ):
            # runpy notes that the module was imported before: intended here.
            warnings.filterwarnings("ignore", category=RuntimeWarning, module="runpy")
            run()
    except SystemExit as e:
        code = e.code
    finally:
        sys.argv = saved_argv
        for key in set(os.environ) - set(saved_env):
            del os.environ[key]
        os.environ.update(saved_env)
        for name, (level, handlers) in saved_logs.items():
            logger = logging.getLogger(name)
            logger.setLevel(level)
            logger.handlers[:] = handlers
    if isinstance(code, str):  # sys.exit("message"): printed, status 1
        err.write(code + "\n")
        code = 1
    return subprocess.CompletedProcess(command, code or 0, out.getvalue(), err.getvalue())
