"""The shared shape of tfclassify's absl command lines.

Each CLI owns its `FlagValues` (so several can live in one process, e.g. tests)
and hands its work to `run`, which gives every command the same contract:
`--help` prints usage, user errors print one `error: ...` line and exit 2.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from tfclassify.core.errors import OptionsError, TfclassifyError

_HELP = ("-h", "--help", "-help", "--helpfull")
ONEDNN_HELP = "CPU ops on oneDNN (default: on, unless TF_ENABLE_ONEDNN_OPTS is set)."


def require(fv: Any, names: Sequence[str], hint: str = "") -> None:
    """Raises OptionsError for the first flag in `names` left empty."""
    for name in names:
        if not fv[name].value:
            raise OptionsError(f"--{name} is required{hint}")


def define_runtime_flags(fv: Any) -> None:
    """The ThreadOptions flags every command that runs a model takes (`thread_options`)."""
    from absl import flags

    define_threads_flag("intra_op_threads", "TF intra-op threads.", fv)
    define_threads_flag("inter_op_threads", "TF inter-op threads.", fv)
    flags.DEFINE_bool("onednn", None, ONEDNN_HELP, flag_values=fv)


def define_threads_flag(name: str, help_: str, fv: Any) -> None:
    """An integer flag for a ThreadOptions count, bounded as ThreadOptions bounds it,
    so that a bad value is one line naming the flag (not the option field)."""
    from absl import flags

    from tfclassify.core.options import MAX_THREADS

    flags.DEFINE_integer(name, None, help_, lower_bound=1, upper_bound=MAX_THREADS, flag_values=fv)


def thread_options(fv: Any, **extra: Any) -> Any:
    """ThreadOptions from `define_runtime_flags`' flags (plus command-specific fields)."""
    from tfclassify.core.options import ThreadOptions

    return ThreadOptions(
        intra_op=fv.intra_op_threads, inter_op=fv.inter_op_threads, onednn=fv.onednn, **extra
    )


def in_flags(error: Exception, fv: Any) -> str:
    """The error's message with each option setting it suggests (`settings`) that is
    a flag in `fv` written as that flag: `overwrite=True` -> `--overwrite`."""
    message = str(error)
    for name, value in getattr(error, "settings", {}).items():
        if name not in fv:
            continue
        if isinstance(value, bool):
            flag = f"--{name}" if value else f"--no{name}"
        else:
            flag = f"--{name}={value}"
        message = message.replace(f"{name}={value!r}", flag)
    return message


def exit_status(fn: Callable[[], int | None], fv: Any = None) -> int:
    """Runs `fn`, turning user errors into one line on stderr and exit status 2, and
    errors of the system (a folder that may not be written, a full disk) into one
    line naming the path and exit status 1: neither is a bug, so no traceback. Ctrl-C
    is one line too, with the shell's status for it (130). Options an error suggests
    are shown as the flags of `fv` (default: absl's global flags)."""
    from absl import flags

    try:
        return fn() or 0
    except KeyboardInterrupt:
        # What was written is complete or a temporary: a convert can be resumed.
        print("error: interrupted", file=sys.stderr)
        return 130
    except (TfclassifyError, flags.Error) as e:
        print(f"error: {in_flags(e, flags.FLAGS if fv is None else fv)}", file=sys.stderr)
        return 2
    except OSError as e:
        if e.filename is None:  # not about a path: more likely a bug, keep its trace
            raise
        print(f"error: {e.strerror or e}: {e.filename}", file=sys.stderr)
        return 1


def run(prog: str, fv: Any, argv: list[str] | None, body: Callable[[Any], int | None]) -> int:
    """Parses `argv` into `fv` and runs `body(fv)`; returns the exit status."""

    argv = sys.argv if argv is None else argv
    if any(a in _HELP for a in argv[1:]):
        print(f"usage: python -m {prog} [flags]\n\n{fv.get_help()}")
        return 0

    def parse_and_run() -> int | None:
        rest = fv(argv)
        if len(rest) > 1:
            raise OptionsError(f"unexpected arguments {rest[1:]}")
        quiet_native_info()
        return body(fv)

    return exit_status(parse_and_run, fv)


def quiet_tensorflow_info() -> None:
    """TF's INFO lines off unless `--verbosity` was given: its Python logger and absl's
    are raised to WARNING, and its C++ INFO level is off (`quiet_native_info`).

    An absl app logs at INFO by default, and TF's logger reaches absl's handler through
    the root logger: a command that saves a model (the demo, the bench) would print six
    lines of SavedModel internals ("Assets written to ...") per model. The commands'
    own messages (absl logging) are not TF's, so they are unaffected.
    """
    from absl import flags
    from absl import logging as absl_logging

    given = "verbosity" in flags.FLAGS and flags.FLAGS["verbosity"].present
    if not given:
        logging.getLogger("tensorflow").setLevel(logging.WARNING)
        # TF's SavedModel code logs through absl itself ("Function `__call__` contains
        # input name(s)...", "Sharding callback duration..."): the app's INFO default
        # would print them. The commands report through their own output, not INFO.
        absl_logging.set_verbosity(absl_logging.WARNING)
        quiet_native_info()


def quiet_native_info() -> None:
    """TF's C++ INFO lines off (CUDA stubs on a CPU host, SavedModel fingerprints...),
    warnings and errors kept, unless the user set TF_CPP_MIN_LOG_LEVEL. TF reads the
    variable once, at import: every command imports TF only after its flags are parsed,
    which is when this runs."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")


def run_app(main: Callable[[list[str]], int | None]) -> None:
    """`absl.app.run(main)` for the commands built on absl's app, without TF's INFO
    lines, and with the error contract of the other commands: a bad flag value and
    any user error `main` raises are one `error:` line and exit status 2 (absl's own
    parser prints two lines and exits 1)."""
    from absl import app, flags

    def parse(argv: list[str]) -> list[str]:
        try:
            return flags.FLAGS(argv)
        except flags.Error as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(2)

    def checked(argv: list[str]) -> None:
        sys.exit(exit_status(lambda: main(argv)))

    app.call_after_init(quiet_tensorflow_info)
    app.run(checked, flags_parser=parse)


def no_positional(argv: list[str]) -> None:
    """Raises OptionsError for arguments after the program name (flags only)."""
    if len(argv) > 1:
        raise OptionsError(f"unexpected arguments {argv[1:]}")
