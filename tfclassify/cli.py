"""The one shape of tfclassify's commands, and `tfclassify COMMAND` that runs them.

Each command builds its own absl `FlagValues` in `_flags()` (with `new_flags`), so
that several commands can run in one process (tests) and leave absl's global `FLAGS`
alone; its `main(argv=None)` hands them to `run`, and `python -m` runs
`sys.exit(main())`. `run` gives every command the same contract: `--help` prints
what the command does and its flags, TensorFlow's INFO lines stay out, user errors
print one `error: ...` line and exit 2. `main` is the `tfclassify` console command
(and `python -m tfclassify`): `tfclassify convert ...` runs `tfclassify.convert`'s `main`.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import sys
from collections.abc import Callable, Sequence
from typing import Any

from tfclassify.core.errors import OptionsError, TfclassifyError

_HELP = ("-h", "--help", "-help", "--helpfull")
ONEDNN_HELP = "CPU ops on oneDNN (default: on, unless TF_ENABLE_ONEDNN_OPTS is set)."
QUIET_HELP = "No progress bars on stderr (nor progress lines, where it is not a terminal)."
# `tfclassify COMMAND`: the module tfclassify.COMMAND runs it (its `main(argv)`). A
# static table, so that `tfclassify --help` imports none of them.
COMMANDS = {
    "convert": "image files -> TFRecord shards, dataset.json and skipped.csv",
    "verify": "re-read every shard of a converted dataset and check it against dataset.json",
    "inspect": "per split: images per class, shards, skipped files, duplicates; --grid samples",
    "infer": "run a classifier over a converted dataset; predictions and a summary",
    "train": "fit a small classifier on a converted dataset (for examples and the demo)",
    "quantize": "LiteRT and OpenVINO variants of a model, measured here; the fastest selected",
    "explain": "Grad-CAM heat-maps over sample images for the predicted class; a grid picture",
    "bench": "every stage, mode and runtime timed side by side; --chart draws them",
    "demo": "the whole product on generated data, no arguments needed",
}
_USAGE = """usage: tfclassify COMMAND [FLAGS]   (the same as: python -m tfclassify.COMMAND [FLAGS])

Offline image-classification data processing on TensorFlow.

commands:
{commands}

tfclassify COMMAND --help    what the command does and its flags
tfclassify --version         the installed version"""


def new_flags() -> tuple[Any, tuple[Callable[..., Any], ...]]:
    """A command's own FlagValues, and absl's DEFINE_string, DEFINE_integer,
    DEFINE_float and DEFINE_bool bound to it."""
    from absl import flags

    fv = flags.FlagValues()
    kinds = (flags.DEFINE_string, flags.DEFINE_integer, flags.DEFINE_float, flags.DEFINE_bool)
    return fv, tuple(functools.partial(define, flag_values=fv) for define in kinds)


def defaults(options: Any) -> dict[str, Any]:
    """Default of each field of the options dataclass `options`, for its flags."""
    return {f.name: f.default for f in dataclasses.fields(options)}


def require(fv: Any, names: Sequence[str], hint: str = "") -> None:
    """Raises OptionsError for the first flag in `names` left empty.

    Checked here, not by absl's `mark_flag_as_required`, whose error is two lines."""
    for name in names:
        if not fv[name].value:
            raise OptionsError(f"--{name} is required{hint}")


def define_runtime_flags(fv: Any) -> None:
    """The ThreadOptions flags every command that runs a model takes (`thread_options`)."""
    from absl import flags

    define_threads_flag(
        "intra_op_threads", "TF intra-op threads; also LiteRT's and OpenVINO's threads.", fv
    )
    define_threads_flag("inter_op_threads", "TF inter-op threads.", fv)
    flags.DEFINE_bool("onednn", None, ONEDNN_HELP, flag_values=fv)


def define_threads_flag(name: str, help_: str, fv: Any) -> None:
    """An integer flag for a ThreadOptions count, bounded as ThreadOptions bounds it,
    so that a bad value is one line naming the flag (not the option field)."""
    from absl import flags

    from tfclassify.core.options import MAX_THREADS

    flags.DEFINE_integer(name, None, help_, lower_bound=1, upper_bound=MAX_THREADS, flag_values=fv)


def thread_options(fv: Any) -> Any:
    """ThreadOptions from `define_runtime_flags`' flags."""
    from tfclassify.core.options import ThreadOptions

    return ThreadOptions(
        intra_op=fv.intra_op_threads, inter_op=fv.inter_op_threads, onednn=fv.onednn
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


def parse_size(text: str | None, flag: str = "image_size") -> tuple[int, int] | None:
    """`--image_size` as given: N (a square) or HxW -> (height, width); empty: None."""
    if not text:
        return None
    parts = text.lower().replace(",", "x").split("x")
    try:
        nums = [int(p) for p in parts]
    except ValueError:
        raise OptionsError(f"--{flag} must be N or HxW, got {text!r}") from None
    if len(nums) == 1:
        return (nums[0], nums[0])
    if len(nums) == 2:
        return (nums[0], nums[1])
    raise OptionsError(f"--{flag} must be N or HxW, got {text!r}")


def plural(count: int, noun: str) -> str:
    """`1 shard`, `2 shards`, `2 classes`."""
    if count == 1:
        return f"{count} {noun}"
    return f"{count} {noun}{'es' if noun.endswith(('s', 'x', 'ch', 'sh')) else 's'}"


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


def run(
    prog: str,
    doc: str,
    fv: Any,
    argv: list[str] | None,
    body: Callable[..., int | None],
    positional: str | None = None,
    *,
    pass_through: bool = False,
) -> int:
    """Parses `argv` into `fv` and runs `body(fv)`, or `body(fv, value)` for a command
    that takes one `positional` argument; returns the exit status.

    Args:
      prog: the module, as in `python -m {prog}`.
      doc: what the command does and how to call it (its module docstring, which
        names any `positional` argument): `--help` prints it, then the flags.
      fv: the command's own flags.
      argv: the program name and its arguments (default: `sys.argv`).
      body: the command's work; user errors it raises are one line (`exit_status`).
      positional: the name of the one argument after the flags (verify's `DIR`);
        None: the command takes none.
      pass_through: run `body(fv, rest)`, with `rest` the arguments that are not
        flags of `fv` (a Beam job's pipeline options), in their order.
    """
    from tfclassify.models import runtime

    # Before anything can import TensorFlow, which reads its log level once.
    runtime.quiet_tensorflow_info()
    argv = sys.argv if argv is None else argv
    if any(a in _HELP for a in argv[1:]):
        print(f"{doc.strip()}\n\nflags:\n{fv.get_help()}")  # absl's app prints the same
        return 0

    def parse_and_run() -> int | None:
        if pass_through:
            return body(fv, fv(argv, known_only=True)[1:])
        rest = fv(argv)[1:]
        if positional is None:
            if rest:
                raise OptionsError(f"unexpected arguments {rest}")
            return body(fv)
        if len(rest) != 1:
            # As the command was typed: `tfclassify verify` (main) or `python -m`.
            typed = argv[0] if argv[0].startswith("tfclassify ") else f"python -m {prog}"
            raise OptionsError(f"usage: {typed} {positional}")
        return body(fv, rest[0])

    return exit_status(parse_and_run, fv)


def usage() -> str:
    """`tfclassify --help`: the commands, one line each."""
    width = max(map(len, COMMANDS))
    return _USAGE.format(
        commands="\n".join(f"  {name:<{width}}  {what}" for name, what in COMMANDS.items())
    )


def main(argv: list[str] | None = None) -> int:
    """`tfclassify COMMAND [FLAGS]`: runs the command as `python -m tfclassify.COMMAND`
    would; returns the exit status (2 for an unknown command, as for a bad flag).

    Args:
      argv: the program name, the command and its arguments (default: `sys.argv`).
    """
    args = (sys.argv if argv is None else argv)[1:]
    if not args:
        print(usage(), file=sys.stderr)
        return 2
    if args[0] in _HELP:
        print(usage())
        return 0
    if args[0] == "--version":
        from tfclassify import __version__

        print(f"tfclassify {__version__}")
        return 0
    if args[0] not in COMMANDS:
        choices = ", ".join(COMMANDS)
        print(f"error: unknown command {args[0]!r}; choose from {choices}", file=sys.stderr)
        return 2
    command = importlib.import_module(f"tfclassify.{args[0]}")
    return command.main([f"tfclassify {args[0]}", *args[1:]])
