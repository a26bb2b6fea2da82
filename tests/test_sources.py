"""Listing the inputs: every file is accounted for, and a layout that would mislabel
images is refused with one clear line, before anything is read."""

from __future__ import annotations

import os

import pytest
from PIL import Image

from tfclassify import testing
from tfclassify.conversion import sources
from tfclassify.core.errors import InputError


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
    got = _by_rel(sources.list_folder(str(tmp_path / "in"), follow_external_links=True))
    assert set(got) == {"cat/a.png", "cat/linked/b.png"}
    assert not any(s.problem for s in got.values())


def _outside(target) -> str:
    return (
        f"outside_root: links to {os.path.realpath(target)}, outside the input root "
        "(follow_external_links is off)"
    )


def _problems(listing: sources.Listing) -> dict[str, str]:
    return {s.relpath: s.problem for s in listing.sources}


def test_links_leading_outside_the_folder_are_skipped_unless_followed(tmp_path):
    """A link to a file, a class folder or a folder outside input_dir is listed once
    as `outside_root` (never walked, never read), unless follow_external_links; a
    link within the root is followed, also when the root is reached through a link."""
    out = tmp_path / "elsewhere"
    _touch_image(out / "c.png")
    _touch_image(out / "dog" / "d.png")
    root = tmp_path / "in"
    _touch_image(root / "cat" / "a.png")
    os.symlink(out / "c.png", root / "cat" / "c.png")  # a file
    os.symlink(out, root / "cat" / "more")  # a folder inside a class
    os.symlink(out / "dog", root / "dog")  # a class folder
    os.symlink(root / "cat" / "a.png", root / "cat" / "again.png")  # within the root
    os.symlink(root, tmp_path / "alias")
    want = {
        "cat/a.png": "",
        "cat/again.png": "",
        "cat/c.png": _outside(out / "c.png"),
        "cat/more": _outside(out),
        "dog": _outside(out / "dog"),
    }
    for top in (root, tmp_path / "alias"):
        listing = sources.list_folder(str(top))
        assert _problems(listing) == want
        assert listing.labels == ("cat", "dog")  # an empty class, as with no images
    followed = sources.list_folder(str(root), follow_external_links=True)
    every = ["cat/a.png", "cat/again.png", "cat/c.png", "cat/more/c.png", "cat/more/dog/d.png"]
    assert _problems(followed) == dict.fromkeys([*every, "dog/d.png"], "")


def test_split_folder_linked_from_outside_is_skipped(tmp_path):
    _touch_image(tmp_path / "elsewhere" / "cat" / "b.png")
    _touch_image(tmp_path / "in" / "train" / "cat" / "a.png")
    os.symlink(tmp_path / "elsewhere", tmp_path / "in" / "validation")
    listing = sources.list_folder(str(tmp_path / "in"))
    assert _problems(listing) == {
        "train/cat/a.png": "",
        "validation": _outside(tmp_path / "elsewhere"),
    }
    assert listing.presplit and listing.sources[1].split == "validation"


def test_manifest_links_leading_outside_its_folder_are_skipped_unless_followed(tmp_path):
    """The manifest's root is its folder: paths are inside it (`..` is an error), and
    a link on the way (the file, or a folder) must not lead out of it unnoticed."""
    out = tmp_path / "elsewhere"
    _touch_image(out / "b.png")
    m = tmp_path / "m"
    _touch_image(m / "a.png")
    os.symlink(out / "b.png", m / "b.png")
    os.symlink(out, m / "linked")
    os.symlink(m / "a.png", m / "inside.png")
    rows = [("a.png", "x"), ("b.png", "x"), ("linked/b.png", "y"), ("inside.png", "y")]
    manifest = testing.make_manifest(m / "list.csv", rows)
    assert _problems(sources.list_manifest(manifest)) == {
        "a.png": "",
        "b.png": _outside(out / "b.png"),
        "linked/b.png": _outside(out / "b.png"),
        "inside.png": "",
    }
    followed = sources.list_manifest(manifest, follow_external_links=True)
    assert _problems(followed) == dict.fromkeys(
        ["a.png", "b.png", "linked/b.png", "inside.png"], ""
    )


def test_class_folder_name_that_is_not_utf8_is_refused(tmp_path):
    """Its name would be the label text in every record and in labels.txt."""
    bad = os.path.join(os.fsencode(tmp_path), b"caf\xe9")
    os.makedirs(bad)
    Image.new("RGB", (8, 8)).save(os.path.join(bad, b"a.png").decode(errors="surrogateescape"))
    with pytest.raises(InputError, match="not valid UTF-8"):
        sources.list_folder(str(tmp_path))


# Names that would break labels.txt (one class a line; its readers drop blank lines)
# or hide in it: each is refused, naming the folder or the manifest line.
BAD_LABELS = ["multi\nline", "cr\rx", "tab\tx", "esc\x1b[0m", "nel\x85x", "ls\u2028x"]


@pytest.mark.parametrize("name", [*BAD_LABELS, " ", "cat ", " cat"])
def test_class_folder_name_must_be_one_line_of_text(tmp_path, name):
    _touch_image(tmp_path / "ok" / "a.png")
    _touch_image(tmp_path / name / "b.png")
    with pytest.raises(InputError) as e:
        sources.list_folder(str(tmp_path))
    message = str(e.value)
    assert message.startswith(f"class folder name {name!r} ") and message.endswith("rename it")
    assert repr(str(tmp_path / name)) in message and len(message.splitlines()) == 1


@pytest.mark.parametrize("label", BAD_LABELS)
def test_manifest_label_must_be_one_line_of_text(tmp_path, label):
    _touch_image(tmp_path / "a.png")
    _touch_image(tmp_path / "b.png")
    manifest = testing.make_manifest(tmp_path / "m.csv", [("a.png", "ok"), ("b.png", label)])
    with pytest.raises(InputError) as e:
        sources.list_manifest(manifest)
    assert str(e.value) == (
        f"manifest {manifest} line 3: label {label!r} holds a line break or another "
        "control character; fix the label"
    )


def test_labels_of_any_script_with_inner_spaces_are_kept(tmp_path):
    names = ["café", "日本語 猫", "a\u00a0b", "👨\u200d👩\u200d👧"]  # NBSP, zero-width joiners
    for name in names:
        _touch_image(tmp_path / name / "a.png")
    assert sources.list_folder(str(tmp_path)).labels == tuple(sorted(names))


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
