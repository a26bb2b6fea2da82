"""tfclassify.cli: what every absl command shares."""

from __future__ import annotations

import logging

from absl import flags
from absl import logging as absl_logging  # noqa: F401  (defines --verbosity, as absl's app does)

from tfclassify import cli
from tfclassify.core.errors import OutputError


def test_tensorflow_info_lines_are_quieted_unless_verbosity_is_given(monkeypatch):
    logger = logging.getLogger("tensorflow")
    monkeypatch.setattr(logger, "level", logging.NOTSET)  # restored after the test
    cli.quiet_tensorflow_info()
    assert logger.level == logging.WARNING

    logger.setLevel(logging.NOTSET)
    monkeypatch.setattr(flags.FLAGS["verbosity"], "present", 1)  # the user asked for a level
    cli.quiet_tensorflow_info()
    assert logger.level == logging.NOTSET


def test_system_errors_about_a_path_are_one_line(capsys):
    def unwritable():
        raise PermissionError(13, "Permission denied", "/data/out")

    assert cli.exit_status(unwritable) == 1
    assert capsys.readouterr().err == "error: Permission denied: /data/out\n"

    def bug():
        raise OSError("something else")  # no path: a traceback is more useful

    import pytest

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
