"""tfclassify.cli: the one shape every command has."""

from __future__ import annotations

import configparser
import importlib
import importlib.util
import os
import re
import subprocess
import sys

import pytest
from absl import flags

import tfclassify
from tfclassify import cli
from tfclassify.core.errors import OutputError

COMMANDS = {
    "convert": "--output_dir",
    "verify": None,  # its one argument is the dataset directory
    "inspect": "--grid",  # and the dataset directory
    "infer": "--model",
    "train": "--data",
    "quantize": "--output_dir",
    "bench": "--num_images",
    "demo": "--per_class",
    "explain": "--layer",
}

# What TensorFlow still prints with the commands' log level (README, "Log lines"):
# lines its C++ libraries log through absl when they load, before any Python code
# runs, which no environment variable turns off; and the error of its GPU probe on
# a host without a CUDA driver.
_PREFIX = r"[IWE]\d{4} [\d:.]+ +\d+ "
NATIVE_REMAINDER = re.compile(
    "|".join(
        (
            r"WARNING: All log messages before absl::InitializeLog\(\) is called are written "
            r"to STDERR",
            _PREFIX + r"cudart_stub\.cc:\d+\] Could not find cuda drivers on your machine, "
            r"GPU will not be used\.",
            _PREFIX + r"port\.cc:\d+\] oneDNN custom operations are on\. .*",
            _PREFIX + r"cuda_platform\.cc:\d+\] failed call to cuInit: .*",
        )
    )
)


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_command_has_the_same_shape(name, capsys):
    """Flags of its own (absl's global FLAGS untouched), `main(argv)` returning the exit
    status, `--help` opening with what it does, one `error:` line for a bad flag."""
    module = importlib.import_module(f"tfclassify.{name}")
    assert module.main([name, "--help"]) == 0
    out = capsys.readouterr().out
    first = out.splitlines()[0]
    assert first.startswith(f"`python -m tfclassify.{name}") and "`: " in first
    assert "\nflags:\n" in out and (COMMANDS[name] or "--flagfile") in out
    if name in ("verify", "inspect"):
        assert first.startswith(f"`python -m tfclassify.{name} DIR`")

    assert module.main([name, "--no_such_flag"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "no_such_flag" in err
    assert not set(module._flags()) & set(flags.FLAGS)


# The line a pass prints when it ends, where stderr is not a terminal.
PASS_DONE = re.compile(r"\w+: (\d+)/\1 img, [\d.]+ img/s, [\d.]+ MB/s, [\d.]+ s")


def test_commands_print_no_tensorflow_noise(class_tree, tmp_path):
    """Without TF_CPP_MIN_LOG_LEVEL in the environment, stderr holds nothing but the
    documented remainder: no INFO lines, no progress bar redrawn into a pipe (a line
    as each pass ends instead)."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    out = str(tmp_path / "out")

    def run(*args: str) -> subprocess.CompletedProcess:
        p = subprocess.run(
            [sys.executable, "-m", *args], capture_output=True, text=True, env=env, timeout=300
        )
        assert p.returncode == 0, p.stderr
        # tfclassify's own warnings come through absl's logger (an empty class, here).
        ours = [
            x
            for x in p.stderr.splitlines()
            if x.startswith("WARNING:absl:") or PASS_DONE.fullmatch(x)
        ]
        noise = [x for x in p.stderr.splitlines() if not NATIVE_REMAINDER.fullmatch(x)]
        assert noise == ours, p.stderr
        return p

    converted = run("tfclassify.convert", "--input_dir", class_tree, "--output_dir", out)
    passes = [x.split(":")[0] for x in converted.stderr.splitlines() if PASS_DONE.fullmatch(x)]
    assert passes == ["scan", "write"]
    assert re.fullmatch(
        r"\d+ images in 4 classes, 1 shard \(train: \d+\) -> .+; \d+ skipped.*\n",
        converted.stdout,
    )
    verified = run("tfclassify.verify", out)
    assert re.fullmatch(rf"ok: 1 shard, \d+ records in {re.escape(out)}\n", verified.stdout)
    inspected = run("tfclassify.inspect", out)
    assert inspected.stdout.startswith(f"{out}: ") and "duplicates: none" in inspected.stdout


def test_plural():
    assert [cli.plural(n, "shard") for n in (0, 1, 2)] == ["0 shards", "1 shard", "2 shards"]
    assert [cli.plural(n, "class") for n in (1, 3)] == ["1 class", "3 classes"]


def test_system_errors_about_a_path_are_one_line(capsys):
    def unwritable():
        raise PermissionError(13, "Permission denied", "/data/out")

    assert cli.exit_status(unwritable) == 1
    assert capsys.readouterr().err == "error: Permission denied: /data/out\n"

    def bug():
        raise OSError("something else")  # no path: a traceback is more useful

    with pytest.raises(OSError, match="something else"):
        cli.exit_status(bug)


def test_ctrl_c_is_one_line_and_status_130(capsys):
    def interrupted():
        raise KeyboardInterrupt

    assert cli.exit_status(interrupted) == 130
    assert capsys.readouterr().err == "error: interrupted\n"


def test_settings_an_error_suggests_are_shown_as_the_commands_flags(capsys):
    """Options are written as the API takes them; a command shows those it has as
    flags, and leaves the others in the API's words."""
    fv = flags.FlagValues()
    flags.DEFINE_bool("overwrite", False, "", flag_values=fv)
    flags.DEFINE_string("device", "auto", "", flag_values=fv)
    flags.DEFINE_bool("onednn", None, "", flag_values=fv)
    settings = {"overwrite": True, "device": "gpu", "onednn": False, "resume": True}
    error = OutputError(
        "use overwrite=True, device='gpu', onednn=False or resume=True", settings=settings
    )

    def fails():
        raise error

    assert cli.exit_status(fails, fv) == 2
    err = capsys.readouterr().err
    assert err == "error: use --overwrite, --device=gpu, --noonednn or resume=True\n"
    assert str(error) == "use overwrite=True, device='gpu', onednn=False or resume=True"


def test_the_console_command_lists_every_command(capsys):
    assert cli.main(["tfclassify", "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: tfclassify COMMAND [FLAGS]")
    listed = [line.split()[0] for line in out.splitlines() if line.startswith("  ")]
    assert listed == list(cli.COMMANDS)
    for name, what in cli.COMMANDS.items():
        assert f"  {name} " in out and what in out
    # Every command of `python -m`, and no other.
    assert set(cli.COMMANDS) == set(COMMANDS)

    assert cli.main(["tfclassify", "--version"]) == 0
    assert capsys.readouterr().out == f"tfclassify {tfclassify.__version__}\n"
    assert cli.main(["tfclassify"]) == 2  # no command: the list, on stderr
    assert capsys.readouterr().err.startswith("usage: tfclassify COMMAND")


@pytest.mark.parametrize("name", list(cli.COMMANDS))
def test_the_console_command_runs_each_command(name, capsys):
    """`tfclassify NAME ...` is `python -m tfclassify.NAME ...`: the same help, the
    same one-line errors."""
    if importlib.util.find_spec(f"tfclassify.{name}") is None:
        pytest.skip(f"tfclassify.{name} is not in this tree yet")
    module = importlib.import_module(f"tfclassify.{name}")
    assert cli.main(["tfclassify", name, "--help"]) == 0
    help_text = capsys.readouterr().out
    assert module.main([name, "--help"]) == 0
    assert help_text == capsys.readouterr().out
    assert cli.main(["tfclassify", name, "--no_such_flag"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "no_such_flag" in err


def test_an_unknown_command_is_one_error_line(capsys):
    assert cli.main(["tfclassify", "covnert", "--input_dir", "x"]) == 2
    assert capsys.readouterr().err == (
        "error: unknown command 'covnert'; choose from " + ", ".join(cli.COMMANDS) + "\n"
    )
    assert cli.main(["tfclassify", "verify"]) == 2  # the usage as it was typed
    assert capsys.readouterr().err == "error: usage: tfclassify verify DIR\n"


def test_python_m_tfclassify_and_the_console_script_run_the_dispatcher():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    paths = [root, *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    p = subprocess.run(
        [sys.executable, "-m", "tfclassify", "verify", "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("`python -m tfclassify.verify DIR`")
    # What `pip install` makes the `tfclassify` command run.
    config = configparser.ConfigParser()
    config.read(os.path.join(root, "setup.cfg"))
    scripts = config["options.entry_points"]["console_scripts"].strip().splitlines()
    assert scripts == ["tfclassify = tfclassify.cli:main"]
