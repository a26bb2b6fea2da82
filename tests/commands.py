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
from collections.abc import Callable

# Loggers whose level or handlers a command's start-up may change for its process.
_LOGGERS = ("", "absl", "tensorflow")


def run_process(module: str, *args: str, **kw) -> subprocess.CompletedProcess:
    """`python -m module args` in a new interpreter."""
    return subprocess.run(
        [sys.executable, "-m", module, *args], capture_output=True, text=True, **kw
    )


def run_in_process(module: str, *args: str) -> subprocess.CompletedProcess:
    """`python -m module args` in this interpreter, with what it prints captured.

    The exit status is its `SystemExit` code; an exception it lets escape (a
    traceback, for a user) propagates. Process-wide state a command sets for itself
    (argv, environment, log levels and handlers; each command parses
    its own absl `FlagValues`) is restored.
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
