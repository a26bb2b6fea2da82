"""Atomic writes: a failure names the file the user asked for and leaves nothing."""

from __future__ import annotations

import os

import pytest

from tfclassify import fileio


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
