"""The output directory after interrupted, damaged or misplaced runs: nothing
incomplete is taken for done, nothing is deleted that might not be ours, and no
file under a final shard name is ever unfinished."""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable

import pytest

from tfclassify import convert
from tfclassify.conversion import scan, shards
from tfclassify.conversion.converter import WORK_DIR
from tfclassify.core import fileio, interop, metadata, schema
from tfclassify.core.errors import DataError, OutputError
from tfclassify.core.options import ConvertOptions


def opts(tmp_path, input_dir: str, **kw) -> ConvertOptions:
    return ConvertOptions(
        input_dir=input_dir, output_dir=str(tmp_path / "out"), quiet=True, num_workers=1, **kw
    )


def test_resume_refuses_a_dataset_whose_shards_are_gone(tmp_path, class_tree):
    """An --overwrite killed after deleting shards but before dataset.json leaves a
    dataset.json that a resume must not report as complete."""
    info = convert(opts(tmp_path, class_tree, shard_size_mb=0.05))
    victim = info.split("train").shards[1].file
    os.remove(os.path.join(info.directory, victim))
    with pytest.raises(OutputError, match=f"not complete .*{victim}: missing"):
        convert(opts(tmp_path, class_tree, shard_size_mb=0.05, resume=True))


def test_overwrite_refuses_when_dataset_json_is_damaged(tmp_path, class_tree):
    """Which shards are ours is unknown then: nothing is deleted."""
    info = convert(opts(tmp_path, class_tree))
    meta = os.path.join(info.directory, metadata.METADATA_FILE)
    with open(meta, "w", encoding="utf-8") as f:
        f.write("{ not json")
    before = sorted(os.listdir(info.directory))
    with pytest.raises(OutputError, match=r"dataset.json is unreadable .*remove them by hand"):
        convert(opts(tmp_path, class_tree, overwrite=True))
    assert sorted(os.listdir(info.directory)) == before


def test_temporary_reports_of_a_killed_run_are_cleared(tmp_path, class_tree):
    """A kill while a report was being written leaves its temporary (and the work
    dir) behind; the next --overwrite removes it, so the result lists as a clean
    run's does. A name tfclassify does not write, or one it writes but not in the
    form its temporaries take, is left alone."""
    info = convert(opts(tmp_path, class_tree))
    clean = sorted(os.listdir(info.directory))
    os.makedirs(os.path.join(info.directory, WORK_DIR))  # the killed run's
    for report in (metadata.METADATA_FILE, metadata.SKIPPED_FILE):
        fd, _ = tempfile.mkstemp(prefix=f"{fileio.TMP_PREFIX}{report}.", dir=info.directory)
        os.close(fd)
    foreign = [".tmp-notes.txt.abcd1234", ".tmp-dataset.json.x1y2", ".tmp-dataset.json"]
    for name in foreign:
        with open(os.path.join(info.directory, name), "w") as f:
            f.write("not ours")
    convert(opts(tmp_path, class_tree, overwrite=True))
    assert sorted(os.listdir(info.directory)) == sorted([*clean, *foreign])


@pytest.mark.parametrize("where", ["inside", "same"])
def test_output_dir_inside_the_input_dir_is_refused(tmp_path, class_tree, copy_tree, where):
    """Its shards would be listed as images of a class on the next run."""
    root = copy_tree(class_tree)
    out = os.path.join(root, "converted") if where == "inside" else root
    with pytest.raises(OutputError, match="is inside input_dir"):
        convert(ConvertOptions(input_dir=root, output_dir=out, quiet=True))
    assert not os.path.exists(os.path.join(root, "converted"))


def test_a_shard_of_the_wrong_size_never_gets_its_final_name(tmp_path):
    """The plan's size is checked before the rename: an input that changed between
    the passes fails the run and leaves no final-named shard."""
    path = str(tmp_path / schema.shard_name("data", "train", 0, 1))
    with pytest.raises(DataError, match="wrote 26 bytes, planned 27"):
        shards.write_shard(path, [b"0123456789"], expected_bytes=27)
    assert os.listdir(tmp_path) == []
    result = shards.write_shard(path, [b"0123456789"], expected_bytes=26)
    assert (result.num_examples, result.num_bytes) == (1, os.path.getsize(path))


def test_non_utf8_file_names_round_trip(tmp_path):
    """Linux file names are bytes: one that is not UTF-8 is stored, verified and
    reported under its own bytes, accepted or skipped."""
    from PIL import Image

    from tfclassify import verify

    root = os.path.join(os.fsencode(tmp_path), b"in", b"cat")
    os.makedirs(root)
    good = os.path.join(root, b"caf\xe9.png")
    Image.new("RGB", (9, 7), (5, 6, 7)).save(os.fsdecode(good), "PNG")
    with open(os.path.join(root, b"br\xfbl\xe9.jpg"), "wb") as f:
        f.write(b"not an image")
    info = convert(opts(tmp_path, os.fsdecode(os.path.dirname(root))))
    assert (info.accepted, info.skipped) == (1, 1)
    assert verify.verify(info.directory).accepted == 1
    records = [
        schema.parse(r)
        for r in _records(info.shard_paths("train")[0])  # the name as stored
    ]
    assert [os.fsencode(r.filename) for r in records] == [b"cat/caf\xe9.png"]
    with open(os.path.join(info.directory, metadata.SKIPPED_FILE), "rb") as f:
        assert b"cat/br\xfbl\xe9.jpg,not_image:" in f.read()


def _records(path: str) -> list[bytes]:
    import tensorflow as tf

    return list(tf.data.TFRecordDataset(path).as_numpy_iterator())


def test_a_huge_file_that_is_no_image_is_not_read_whole(tmp_path):
    """Only its first bytes are read, with validate=full and =header: a stray 4 GB
    video must not fill the memory. (In a fresh process: the peak memory of this one
    is whatever earlier tests left. One process for both modes: the peak covers both.)"""
    from PIL import Image

    root = tmp_path / "in" / "cat"
    os.makedirs(root)
    Image.new("RGB", (8, 8)).save(root / "a.png", "PNG")
    with open(root / "movie.jpg", "wb") as f:
        f.write(b"\x00\x00\x00\x18ftypmp42")
        f.truncate(4 << 30)  # sparse: takes no disk
    script = (
        "import resource, sys, tfclassify\n"
        "for validate in ('full', 'header'):\n"
        "    info = tfclassify.convert(tfclassify.ConvertOptions(input_dir=sys.argv[1], "
        "output_dir=sys.argv[2] + validate, validate=validate, quiet=True))\n"
        "    print(validate, info.skipped_by_reason)\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    args = [str(tmp_path / "in"), str(tmp_path / "out")]
    run = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    *reasons, peak_kib = run.stdout.splitlines()
    assert reasons == ["full {'not_image': 1}", "header {'not_image': 1}"]
    assert int(peak_kib) < 3 << 20  # TF's own footprint is well under 3 GiB


def _files(directory: str) -> dict[str, str]:
    """Every file below `directory`: relative path -> sha256 of its bytes."""
    found = {}
    for parent, _, names in os.walk(directory):
        for name in names:
            path = os.path.join(parent, name)
            with open(path, "rb") as f:
                found[os.path.relpath(path, directory)] = hashlib.sha256(f.read()).hexdigest()
    return found


def _change_a_shard(info: metadata.DatasetInfo) -> str:
    path = info.shard_paths("train")[0]
    with open(path, "r+b") as f:
        f.seek(100)
        f.write(b"\xff")
    return path


def _place_a_user_file(info: metadata.DatasetInfo) -> str:
    path = os.path.join(info.directory, schema.shard_name(info.name, "test", 0, 1))
    with open(path, "wb") as f:
        f.write(b"the user's own file")
    return path


@pytest.mark.parametrize("collision", [_place_a_user_file, _change_a_shard])
def test_overwrite_refuses_a_collision_before_deleting_anything(tmp_path, class_tree, collision):
    """A file at a name the new run writes that is not provably tfclassify's (a user's
    file at a shard name, a shard changed since it was written) stops --overwrite
    before the old dataset is touched."""
    info = convert(opts(tmp_path, class_tree, shard_size_mb=0.05))
    path = collision(info)
    before = _files(info.directory)
    with pytest.raises(OutputError, match=f"{path} was not created by tfclassify"):
        convert(opts(tmp_path, class_tree, overwrite=True))
    assert _files(info.directory) == before


def test_overwrite_deletes_only_files_proven_to_be_ours(tmp_path, class_tree):
    """What dataset.json or a done record names is deleted only when its name is a
    shard's and its size and sha256 are the ones recorded; a file that merely looks
    like a temporary shard is not ours either."""
    info = convert(opts(tmp_path, class_tree, shard_size_mb=0.05))
    out = info.directory

    def user_file(name: str, data: bytes) -> dict:
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
        return {"file": name, "num_bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}

    meta = os.path.join(out, metadata.METADATA_FILE)
    with open(meta, encoding="utf-8") as f:
        d = json.load(f)
    listed = d["splits"]["train"]["shards"]
    listed.append({**user_file("thesis.pdf", b"%PDF- my thesis"), "num_examples": 1})
    other = user_file(schema.shard_name("other", "train", 0, 1), b"kept: wrong sha256")
    listed.append({**other, "sha256": "0" * 64, "num_examples": 1})
    with open(meta, "w", encoding="utf-8") as f:
        json.dump(d, f)
    done = os.path.join(out, WORK_DIR, "done")
    os.makedirs(done)
    notes = user_file("notes.txt", b"my notes")
    with open(os.path.join(done, "notes.txt.json"), "w", encoding="utf-8") as f:
        json.dump({**notes, "num_examples": 1}, f)
    looks_temporary = f"{fileio.TMP_PREFIX}{schema.shard_name('data', 'train', 0, 1)}"
    user_file(looks_temporary, b"mine too")
    user_file(f"{looks_temporary}.ABCD1234", b"mine too")  # not the form mkstemp gives
    kept = {k: v for k, v in _files(out).items() if not k.startswith(WORK_DIR)}
    for name in _written(info):
        del kept[name]

    again = convert(opts(tmp_path, class_tree, overwrite=True))  # one shard now
    after = _files(out)
    assert {k: after.get(k) for k in kept} == kept
    assert sorted(after) == sorted([*kept, *_written(again)])
    # Without a work dir no run is under way: even the exact form is not a temporary.
    kept[user_file(f"{looks_temporary}.abcd1234", b"!")["file"]] = hashlib.sha256(b"!").hexdigest()
    convert(opts(tmp_path, class_tree, overwrite=True))
    assert {k: v for k, v in _files(out).items() if k in kept} == kept


def _written(info: metadata.DatasetInfo) -> list[str]:
    """The files a conversion wrote: its shards, their indexes and the reports."""
    reports = [metadata.METADATA_FILE, metadata.LABELS_FILE, metadata.SKIPPED_FILE]
    shards = [f for split in info.splits.values() for s in split.shards for f, _, _ in s.files()]
    return reports + list(interop.TFDS_FILES) + shards


@pytest.mark.parametrize("target", ["class", "above"])
def test_output_dir_reachable_through_a_linked_folder_is_refused(tmp_path, class_tree, target):
    """A class folder that links to a folder holding output_dir (directly, or above
    the folders with the images) would list the output as images on the next run
    (links out of the input are followed only when asked)."""
    photos = tmp_path / "photos"
    shutil.copytree(class_tree, photos)
    root = tmp_path / "in"
    root.mkdir()
    if target == "class":
        for cls in os.listdir(photos):
            os.symlink(photos / cls, root / cls)
        out = photos / "cat" / "converted"
    else:
        os.symlink(photos, root / "animals")  # its images are in its subfolders
        out = photos / "converted"
    with pytest.raises(OutputError, match="is inside input_dir"):
        convert(
            ConvertOptions(
                input_dir=str(root),
                output_dir=str(out),
                follow_external_links=True,
                quiet=True,
            )
        )
    assert not out.exists()


@pytest.mark.parametrize(
    "state", ["not json", "{}", "[1]", '{"fingerprint": 1, "listing": "x"}', b"\xff\xfe"]
)
def test_resume_with_a_damaged_state_file_is_one_error(tmp_path, class_tree, state):
    """The work dir's state.json is tfclassify's own, but a disk or a hand may damage
    it: --resume says so and points to --overwrite, which then starts over."""
    work = tmp_path / "out" / WORK_DIR
    work.mkdir(parents=True)
    path = work / "state.json"
    path.write_bytes(state if isinstance(state, bytes) else state.encode())
    with pytest.raises(OutputError, match=f"{path} is damaged .*use overwrite=True"):
        convert(opts(tmp_path, class_tree, resume=True))
    info = convert(opts(tmp_path, class_tree, overwrite=True))
    assert sorted(_files(info.directory)) == sorted(_written(info))


def test_outputs_get_the_mode_the_umask_gives(tmp_path, class_tree, umask):
    """Shards, reports and predictions are as readable as any file the user creates
    (mkstemp alone makes them private to the owner)."""
    import numpy as np

    from tfclassify.inference import predictions

    info = convert(opts(tmp_path, class_tree, shard_size_mb=0.05))
    paths = [os.path.join(info.directory, f) for f in _written(info)]
    result = predictions.InferResult(
        mode="batch",
        device="cpu",
        threads={},
        model="m",
        data=info.directory,
        split="train",
        batch_size=1,
        class_names=info.labels,
        keys=["cat/a.png"],
        true_ids=np.array([0]),
        topk_ids=np.array([[0]]),
        topk_probs=np.array([[1.0]], np.float32),
        probabilities=None,
        seconds=1.0,
    )
    for ext in (".csv", ".jsonl"):
        paths.append(str(tmp_path / "preds" / f"p{ext}"))
        paths.append(predictions.write_predictions(result, paths[-1]))
    assert {p: oct(stat.S_IMODE(os.stat(p).st_mode)) for p in paths} == {
        p: oct(0o666 & ~umask) for p in paths
    }


# ---------------------------------------------------------------- a full disk

# Re-encoded images go through the scan's cache; small shards make several of them.
_FILLING = dict(image_format="png", shard_size_mb=0.05)


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory, class_tree) -> dict[str, str]:
    out = tmp_path_factory.mktemp("clean") / "out"
    convert(ConvertOptions(input_dir=class_tree, output_dir=str(out), quiet=True, **_FILLING))
    return _files(str(out))


class _FillingFile:
    """A file on a disk with `room[0]` bytes left: a write past that writes what fits,
    then fails as write(2) does, with ENOSPC and no file name."""

    def __init__(self, f, room: list[int]):
        self._f, self._room = f, room

    def write(self, data):
        if len(data) > self._room[0]:
            self._f.write(data[: self._room[0]])
            self._room[0] = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._room[0] -= len(data)
        return self._f.write(data)

    def __getattr__(self, name: str):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self._f.close()


def _fill_scan_files(monkeypatch, which: str, room: int) -> None:
    """The scan's own writes of `which` files run out of space after `room` bytes."""
    left = [room]

    def filling_open(file, mode="r", *args, **kw):
        f = open(file, mode, *args, **kw)  # noqa: SIM115 (the caller closes it)
        return _FillingFile(f, left) if mode[0] in "wa" and which in str(file) else f

    monkeypatch.setattr(scan, "open", filling_open, raising=False)


def _fill_the_cache(monkeypatch) -> None:
    _fill_scan_files(monkeypatch, f"{os.sep}cache{os.sep}", room=60_000)  # a few files in


def _fill_the_journal(monkeypatch) -> None:
    _fill_scan_files(monkeypatch, "scan.jsonl", room=100)  # a line and a half


def _fill_the_shards(monkeypatch) -> None:
    """TF's record writer runs out of space after 20 records (a shard or two), and
    says so as it does."""
    import tensorflow as tf

    left = [20]

    class FillingWriter(tf.io.TFRecordWriter):
        def __init__(self, path, *args):
            super().__init__(path, *args)
            self.where = path

        def write(self, record):
            left[0] -= 1
            if left[0] < 0:
                raise tf.errors.ResourceExhaustedError(
                    None, None, f"{self.where}; No space left on device"
                )
            super().write(record)

    monkeypatch.setattr(tf.io, "TFRecordWriter", FillingWriter)


@pytest.mark.parametrize(
    "fill, written",
    [
        (_fill_the_cache, rf"{WORK_DIR}/cache/\d+\.bin"),
        (_fill_the_journal, rf"{WORK_DIR}/scan\.jsonl"),
        (_fill_the_shards, r"data-train\.tfrecord-\d{5}-of-\d{5}"),
    ],
    ids=["cache", "journal", "shard"],
)
def test_a_full_disk_is_one_error_and_resumable(
    tmp_path, class_tree, clean_run, monkeypatch, fill, written
):
    """Out of space anywhere (the scan's cache or journal, a shard): one error naming
    the file the user would look for (never a temporary) and what to do; --resume
    afterwards gives the dataset a clean run gives, byte for byte."""
    fill(monkeypatch)
    out = str(tmp_path / "out")
    with pytest.raises(OutputError) as e:
        convert(opts(tmp_path, class_tree, **_FILLING))
    assert re.fullmatch(
        f"No space left on device writing {re.escape(out)}/{written}: "
        "free some space, then rerun with resume=True to finish",
        str(e.value),
    ), e.value
    monkeypatch.undo()
    convert(opts(tmp_path, class_tree, resume=True, **_FILLING))
    assert _files(out) == clean_run


def test_a_real_full_disk_is_one_error_and_resumable(tmp_path, class_tree, clean_run):
    """The same on a small tmpfs, where mounting one is allowed (root, not in a
    locked-down container); it grows before the resume."""
    small = tmp_path / "small"
    small.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(small)]
    if not shutil.which("mount") or subprocess.run(mount, capture_output=True).returncode:
        pytest.skip("mounting a tmpfs is not allowed here")
    try:
        out = small / "out"
        options = ConvertOptions(input_dir=class_tree, output_dir=str(out), quiet=True, **_FILLING)
        with pytest.raises(
            OutputError, match=f"^No space left on device writing {out}/.*resume=True"
        ):
            convert(options)
        subprocess.run(["mount", "-o", "remount,size=8m", str(small)], check=True)
        convert(dataclasses.replace(options, resume=True))
        assert _files(str(out)) == clean_run
    finally:
        subprocess.run(["umount", str(small)], check=True)


def _first_pending_shard(out: str, clean_run: dict[str, str]) -> str:
    return next(f for f in sorted(clean_run) if schema.parse_shard_name(f) and f not in _files(out))


def _resume_refuses_until(
    tmp_path, class_tree, clean_run, path: str, moved: Callable[[], object]
) -> None:
    """--resume refuses the file at `path`, changing no file (the work dir's too);
    once `moved()` has put it out of the way, it finishes as a clean run."""
    out = str(tmp_path / "out")
    before = _files(out)
    with pytest.raises(OutputError, match=f"^{re.escape(path)} was not created by tfclassify"):
        convert(opts(tmp_path, class_tree, resume=True, **_FILLING))
    assert _files(out) == before
    moved()
    convert(opts(tmp_path, class_tree, resume=True, **_FILLING))
    assert _files(out) == clean_run


@pytest.mark.parametrize(
    "name",
    [_first_pending_shard, lambda *_: metadata.LABELS_FILE, lambda *_: metadata.SKIPPED_FILE],
    ids=["shard", "labels", "skipped"],
)
def test_resume_refuses_a_file_it_did_not_write(tmp_path, class_tree, clean_run, monkeypatch, name):
    """A run stopped part way (by a full disk here) has written some shards; a file
    at a name the resume writes (a shard still to write, a report) that no done
    record proves is tfclassify's stops --resume before anything is written or
    deleted."""
    _fill_the_shards(monkeypatch)
    out = str(tmp_path / "out")
    with pytest.raises(OutputError, match="resume=True"):
        convert(opts(tmp_path, class_tree, **_FILLING))
    monkeypatch.undo()
    path = os.path.join(out, name(out, clean_run))
    with open(path, "wb") as f:
        f.write(b"the user's own file")
    _resume_refuses_until(tmp_path, class_tree, clean_run, path, lambda: os.remove(path))


def test_reports_of_a_killed_run_are_proven_by_their_done_records(
    tmp_path, class_tree, clean_run, monkeypatch
):
    """A run stopped after its reports, before dataset.json: --resume keeps them as
    its own (they are recorded as done, as shards are); a report changed since is
    not provably tfclassify's, and stops the resume."""

    def killed(self) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(metadata.DatasetInfo, "save", killed)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        convert(opts(tmp_path, class_tree, **_FILLING))
    monkeypatch.undo()
    work = str(out / WORK_DIR)
    for report in (metadata.LABELS_FILE, metadata.SKIPPED_FILE):
        assert shards.load_done(work, str(out), report), report
    labels = out / metadata.LABELS_FILE
    written = labels.read_bytes()
    labels.write_bytes(written + b"my own class\n")
    _resume_refuses_until(
        tmp_path, class_tree, clean_run, str(labels), lambda: labels.write_bytes(written)
    )


def test_a_shard_is_recorded_as_done_before_it_gets_its_name(tmp_path):
    """So whatever has a final shard name has a record proving it is tfclassify's
    (for --overwrite) and complete (for --resume), however a run is killed."""
    work, name = str(tmp_path / WORK_DIR), schema.shard_name("data", "train", 0, 1)
    path = str(tmp_path / name)
    named_when_recorded = []

    def record_done(result: metadata.ShardInfo) -> None:
        named_when_recorded.append(os.path.exists(path))
        shards.mark_done(work, result)

    result = shards.write_shard(path, [b"0123456789"], record_done=record_done)
    assert named_when_recorded == [False]
    assert shards.load_done(work, str(tmp_path), name) == result
