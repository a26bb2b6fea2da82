"""Atomic writes: a failure names the file the user asked for and leaves nothing."""

from __future__ import annotations

import errno
import os
import stat

import pytest

from tfclassify.core import fileio


def test_errors_name_the_target_not_the_temporary(tmp_path):
    (tmp_path / "taken").mkdir()
    with pytest.raises(IsADirectoryError) as e:
        fileio.atomic_write_text(str(tmp_path / "taken"), "x")  # rename onto a folder
    assert e.value.filename == str(tmp_path / "taken")
    with pytest.raises(FileNotFoundError) as e:
        fileio.atomic_write_text(str(tmp_path / "no" / "such" / "f.csv"), "x")  # no folder
    assert e.value.filename == str(tmp_path / "no" / "such" / "f.csv")
    assert os.listdir(tmp_path) == ["taken"] and os.listdir(tmp_path / "taken") == []


def test_a_name_that_is_not_utf8_is_written_as_its_bytes(tmp_path):
    path = tmp_path / "report.csv"
    fileio.atomic_write_text(str(path), os.fsdecode(b"caf\xe9.png") + "\n")
    assert path.read_bytes() == b"caf\xe9.png\n"


def test_files_get_the_mode_the_umask_gives_and_temporaries_are_known(tmp_path, umask):
    """Readable as open() would make them (mkstemp alone makes them 0600), and the
    temporary's name has the form `temporary_target` recognises."""
    path = tmp_path / "labels.txt"
    with fileio.atomic_path(str(path)) as tmp:
        assert fileio.temporary_target(os.path.basename(tmp)) == "labels.txt"
        assert stat.S_IMODE(os.stat(tmp).st_mode) == 0o666 & ~umask  # before the rename
        with open(tmp, "w") as f:
            f.write("cat\n")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~umask
    assert fileio.new_file_mode() == 0o666 & ~umask
    for name in (
        ".tmp-labels.txt",
        ".tmp-labels.txt.abc",
        ".tmp-labels.txt.ABCDEFGH",
        "x.abcdefgh",
    ):
        assert fileio.temporary_target(name) is None


def test_a_write_that_fails_names_the_target(tmp_path):
    """A full disk fails a write or a sync with no file name: the error names the
    file being written, while an error about another file keeps its own name."""
    path = str(tmp_path / "dataset.json")
    with pytest.raises(OSError) as e, fileio.atomic_path(path):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert (e.value.errno, e.value.filename) == (errno.ENOSPC, path)
    with pytest.raises(FileNotFoundError) as e, fileio.atomic_path(path):
        os.stat(tmp_path / "an input")
    assert e.value.filename == str(tmp_path / "an input")
    assert os.listdir(tmp_path) == []
