"""What a conversion promises someone who reads its output with plain TF and files:
the record keys as written on disk, labels.txt, which files are inputs, the orders
a seed gives, bytes that do not depend on the worker count, and a resume after an
input changed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil

import pytest
import tensorflow as tf
from PIL import Image
from recordlib import assert_same_output, read_records

from tfclassify import convert, testing
from tfclassify.conversion import shards
from tfclassify.core import metadata
from tfclassify.core.errors import DataError, InputError
from tfclassify.core.options import ConvertOptions

# The keys and value types the tensorflow/models image-classification readers expect,
# spelled out here (not taken from the schema module) so a rename there fails here.
ON_DISK = {
    "image/encoded": "bytes_list",
    "image/format": "bytes_list",
    "image/class/label": "int64_list",
    "image/class/text": "bytes_list",
    "image/height": "int64_list",
    "image/width": "int64_list",
    "image/channels": "int64_list",
    "image/filename": "bytes_list",
    "image/key/sha256": "bytes_list",
}


def shard_examples(path: str) -> list[tf.train.Example]:
    """The records of one shard, parsed by protobuf alone."""
    return [
        tf.train.Example.FromString(raw)
        for raw in tf.data.TFRecordDataset(path).as_numpy_iterator()
    ]


def examples(directory: str) -> list[tf.train.Example]:
    """Every record of every split, in split and shard order."""
    info = metadata.load(directory)
    return [
        e for split in info.splits for path in info.shard_paths(split) for e in shard_examples(path)
    ]


def filename(example: tf.train.Example) -> str:
    return example.features.feature["image/filename"].bytes_list.value[0].decode()


def test_record_keys_on_disk_are_the_tf_models_ones(converted_tree, class_tree):
    found = examples(converted_tree)
    labels = read_labels_txt(converted_tree)
    assert len(found) == metadata.load(converted_tree).accepted > 0
    for example in found:
        feature = example.features.feature
        assert set(feature) == set(ON_DISK)
        for key, kind in ON_DISK.items():
            assert feature[key].WhichOneof("kind") == kind, key
            assert len(getattr(feature[key], kind).value) == 1, key
        value = {key: getattr(feature[key], kind).value[0] for key, kind in ON_DISK.items()}
        encoded, filename = value["image/encoded"], value["image/filename"].decode()
        with open(os.path.join(class_tree, filename), "rb") as f:
            source = f.read()
        # Kept as is (no re-encoding for these inputs) and named by the source's format.
        assert encoded == source
        with Image.open(os.path.join(class_tree, filename)) as im:
            assert value["image/format"].decode() == im.format.lower()
        assert value["image/key/sha256"].decode() == hashlib.sha256(encoded).hexdigest()
        text = value["image/class/text"].decode()
        assert text == filename.split("/")[0] == labels[value["image/class/label"]]
        image = tf.io.decode_image(encoded, expand_animations=False)
        assert tuple(image.shape) == (
            value["image/height"],
            value["image/width"],
            value["image/channels"],
        )


def read_labels_txt(directory: str) -> list[str]:
    with open(os.path.join(directory, "labels.txt"), encoding="utf-8", newline="") as f:
        text = f.read()
    assert text.endswith("\n") and "\r" not in text
    return text[:-1].split("\n")


def test_labels_txt_is_one_class_a_line_in_label_id_order(converted_tree, class_tree):
    """Line i is the class of label id i: the sorted class folders, the empty one too."""
    labels = read_labels_txt(converted_tree)
    assert labels == sorted(os.listdir(class_tree)) and "empty_class" in labels
    assert tuple(labels) == metadata.load(converted_tree).labels
    for r in read_records(converted_tree).values():
        assert labels[r.label] == r.text


@pytest.mark.parametrize("layout", ["classes", "splits"])
def test_hidden_files_and_folders_are_not_inputs(tmp_path, layout):
    """.DS_Store, a hidden image, a hidden folder of images inside a class and beside
    the classes (or the splits): neither converted, nor skipped, nor counted."""
    root = tmp_path / "in"
    splits = {"train": 2, "validation": 1} if layout == "splits" else None
    visible = testing.make_class_tree(
        root, classes=("cat", "dog"), per_class=2, splits=splits, seed=4, max_side=40
    )
    image = visible[0]
    top = [root / s for s in splits] if splits else [root]
    hidden = [os.path.join(root, ".DS_Store")]
    for folder in top:
        hidden += [folder / ".DS_Store", folder / ".git" / "x.jpg", folder / ".hidden" / "y.jpg"]
        hidden += [folder / "cat" / ".hidden.jpg", folder / "cat" / ".thumbs" / "t.jpg"]
        hidden += [folder / "cat" / ".DS_Store"]
    for path in hidden:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        shutil.copyfile(image, path)  # a valid image: only its name hides it
    info = convert(
        ConvertOptions(input_dir=str(root), output_dir=str(tmp_path / "out"), quiet=True)
    )
    assert info.labels == ("cat", "dog")
    assert (info.files_found, info.accepted, info.skipped) == (len(visible), len(visible), 0)
    assert sorted(os.path.join(root, k) for k in read_records(info.directory)) == visible


def test_different_seeds_give_different_orders(tmp_path, converted_tree, class_tree):
    """Same images and shards, another order within and across shards."""
    first = metadata.load(converted_tree)
    assert first.options["seed"] == 0
    options = ConvertOptions(
        **{**first.options, "seed": 1}, output_dir=str(tmp_path / "out"), quiet=True
    )
    second = convert(options)
    a = [filename(e) for e in examples(converted_tree)]
    b = [filename(e) for e in examples(second.directory)]
    assert sorted(a) == sorted(b) and len(a) == first.accepted
    assert a != b


def test_deterministic_across_worker_counts_with_converted_and_skipped_files(
    tmp_path, hostile_tree, converted_hostile, monkeypatch
):
    """4 workers (the session's conversion) and 1 worker, with files re-read when
    written (the memory budget runs out), give the same bytes, on a corpus that has
    files converted on the way in (CMYK JPEG, PNG with alpha) and skipped ones."""
    root, kinds = hostile_tree
    monkeypatch.setattr("tfclassify.conversion.scan._HOLD_BYTES", 20_000)
    one = convert(
        ConvertOptions(
            **converted_hostile.options,
            output_dir=str(tmp_path / "one"),
            num_workers=1,
            quiet=True,
        )
    )
    records = read_records(one.directory)
    for kind in ("cmyk_jpeg", "rgba_png"):
        with open(kinds[kind], "rb") as f:
            assert records[os.path.relpath(kinds[kind], root)].encoded != f.read(), kind
    assert one.skipped > 0 and len(one.splits["train"].shards) > 2
    assert_same_output(one.directory, converted_hostile.directory)


def _interrupted(tmp_path, monkeypatch, input_dir: str) -> ConvertOptions:
    """Options of a run of `input_dir` stopped (as by Ctrl-C) once its first train
    shard is done, before the second one's done record: a run `resume` finishes."""
    options = ConvertOptions(
        input_dir=input_dir,
        output_dir=str(tmp_path / "out"),
        shard_size_mb=0.05,
        num_workers=1,
        quiet=True,
    )
    mark_done = shards.mark_done
    calls = []

    def stop_at_the_second(work, result):
        calls.append(result.file)
        if len(calls) == 2:
            raise KeyboardInterrupt
        mark_done(work, result)

    with monkeypatch.context() as m:
        m.setattr(shards, "mark_done", stop_at_the_second)
        with pytest.raises(KeyboardInterrupt):
            convert(options)
    assert not os.path.exists(os.path.join(options.output_dir, metadata.METADATA_FILE))
    return options


def _tree(directory: str) -> dict[str, bytes]:
    found = {}
    for parent, _, names in os.walk(directory):
        for name in names:
            with open(os.path.join(parent, name), "rb") as f:
                found[os.path.relpath(os.path.join(parent, name), directory)] = f.read()
    return found


@pytest.mark.parametrize("change", ["added", "removed"])
def test_resume_after_an_input_file_was_added_or_removed_is_refused(
    tmp_path, monkeypatch, copy_tree, class_tree, change
):
    """The listing is not the interrupted run's: refused before anything is written;
    starting over (overwrite) converts the corpus as it is now."""
    src = copy_tree(class_tree)
    options = _interrupted(tmp_path, monkeypatch, src)
    cat = os.path.join(src, "cat")
    first = os.path.join(cat, sorted(os.listdir(cat))[0])
    if change == "added":
        shutil.copyfile(first, os.path.join(cat, "new.jpg"))
    else:
        os.remove(first)
    before = _tree(options.output_dir)
    with pytest.raises(InputError, match="input files changed since the interrupted run"):
        convert(dataclasses.replace(options, resume=True))
    assert _tree(options.output_dir) == before
    info = convert(dataclasses.replace(options, overwrite=True))
    assert info.files_found == info.accepted == len(_tree(src))


def test_resume_after_an_input_file_changed_is_refused_naming_it(
    tmp_path, monkeypatch, copy_tree, class_tree
):
    """A file scanned by the interrupted run and changed since, in a shard still to
    write: the resume stops, naming it (what was scanned no longer describes it);
    starting over stores the new bytes."""
    src = copy_tree(class_tree)
    options = _interrupted(tmp_path, monkeypatch, src)
    written = {
        filename(e)
        for name in os.listdir(options.output_dir)
        if name.startswith("data-train.tfrecord-")
        for e in shard_examples(os.path.join(options.output_dir, name))
    }
    assert written, "the interrupted run wrote its first shard"
    rel = sorted(set(_tree(src)) - written - {"empty_class"})[0]
    path = os.path.join(src, rel)
    with open(path, "ab") as f:
        f.write(b"\0")  # one byte longer, the same size of image
    with pytest.raises(DataError, match=f"{path} changed after it was scanned"):
        convert(dataclasses.replace(options, resume=True))
    info = convert(dataclasses.replace(options, overwrite=True))
    with open(path, "rb") as f:
        assert read_records(info.directory)[rel].encoded == f.read()
