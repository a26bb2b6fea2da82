"""Listing the inputs: every file is accounted for, and a layout that would mislabel
images is refused with one clear line, before anything is read."""

from __future__ import annotations

import os

import pytest
from PIL import Image

from tfclassify import sources
from tfclassify.errors import InputError


def _touch_image(path) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.new("RGB", (8, 8), (1, 2, 3)).save(path, "PNG")


def _by_rel(listing: sources.Listing) -> dict[str, sources.Source]:
    return {s.relpath: s for s in listing.sources}


def test_split_folders_account_for_loose_files_and_alias_val(tmp_path):
    """A file directly in the root of a split layout is reported, not dropped;
    `val/` is the `validation` split the reader and infer default to."""
    for rel in ("train/cat/a.png", "val/cat/b.png", "train/loose.png", "root.png"):
        _touch_image(tmp_path / rel)
    listing = sources.list_folder(str(tmp_path))
    got = _by_rel(listing)
    assert listing.presplit and listing.labels == ("cat",)
    assert set(got) == {"train/cat/a.png", "val/cat/b.png", "train/loose.png", "root.png"}
    assert got["val/cat/b.png"].split == "validation"
    assert got["root.png"].problem == got["train/loose.png"].problem == sources.OUTSIDE_CLASS
    assert not got["train/cat/a.png"].problem


def test_split_folders_mixed_with_class_folders_are_refused(tmp_path):
    # Read as classes, train/ and validation/ would label every image wrong.
    for rel in ("train/cat/a.png", "validation/cat/b.png", "notes/c.png"):
        _touch_image(tmp_path / rel)
    with pytest.raises(InputError, match=r"mixes split folders \['train', 'validation'\] "):
        sources.list_folder(str(tmp_path))


def test_val_and_validation_together_are_refused(tmp_path):
    for rel in ("val/cat/a.png", "validation/cat/b.png"):
        _touch_image(tmp_path / rel)
    with pytest.raises(InputError, match="both val/ and validation/"):
        sources.list_folder(str(tmp_path))


def test_special_files_are_listed_with_a_problem_not_opened(tmp_path):
    """A named pipe would block the scan forever if opened; it is still counted."""
    _touch_image(tmp_path / "cat" / "a.png")
    os.mkfifo(tmp_path / "cat" / "pipe.jpg")
    got = _by_rel(sources.list_folder(str(tmp_path)))
    assert got["cat/pipe.jpg"].problem == sources.NOT_REGULAR
    assert not got["cat/a.png"].problem


def test_linked_folders_are_followed_but_a_cycle_ends(tmp_path):
    _touch_image(tmp_path / "elsewhere" / "b.png")
    _touch_image(tmp_path / "in" / "cat" / "a.png")
    os.symlink(tmp_path / "elsewhere", tmp_path / "in" / "cat" / "linked")
    os.symlink(tmp_path / "in" / "cat", tmp_path / "in" / "cat" / "loop")
    got = _by_rel(sources.list_folder(str(tmp_path / "in")))
    assert set(got) == {"cat/a.png", "cat/linked/b.png"}


def test_class_folder_name_that_is_not_utf8_is_refused(tmp_path):
    """Its name would be the label text in every record and in labels.txt."""
    bad = os.path.join(os.fsencode(tmp_path), b"caf\xe9")
    os.makedirs(bad)
    Image.new("RGB", (8, 8)).save(os.path.join(bad, b"a.png").decode(errors="surrogateescape"))
    with pytest.raises(InputError, match="not valid UTF-8"):
        sources.list_folder(str(tmp_path))


def _manifest(tmp_path, text: str | bytes) -> str:
    path = tmp_path / "m.csv"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return str(path)


@pytest.mark.parametrize("split", ["hold-out", "a/b", "x.y"])
def test_manifest_split_names_must_fit_in_a_shard_name(tmp_path, split):
    # '-' would be read back as the end of the dataset name; '/' is a folder.
    _touch_image(tmp_path / "a.png")
    path = _manifest(tmp_path, f"path,label,split\na.png,cat,{split}\n")
    with pytest.raises(InputError, match=f"line 2: split '{split}' is not a valid split name"):
        sources.list_manifest(path)


def test_manifest_with_an_empty_split_column_is_not_presplit(tmp_path):
    """So validation_fraction can still carve out a validation split."""
    _touch_image(tmp_path / "a.png")
    listing = sources.list_manifest(_manifest(tmp_path, "path,label,split\na.png,cat,\n"))
    assert not listing.presplit and listing.sources[0].split == sources.DEFAULT_SPLIT


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"path,label\na.png,caf\xe9\n", "is not UTF-8 text"),
        # A quote never closed: the field runs past csv's size limit (128 KiB).
        (b'path,label\n"a.png,cat\n' + b"x" * 200_000, "is not a valid CSV file"),
    ],
)
def test_unreadable_manifest_is_one_clear_error(tmp_path, content, message):
    with pytest.raises(InputError, match=message):
        sources.list_manifest(_manifest(tmp_path, content))
