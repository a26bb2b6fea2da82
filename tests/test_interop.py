"""Converted shards read by other tools as they are (tfclassify.core.interop): TFDS
through the metadata beside dataset.json, NVIDIA DALI and the `tfrecord` package
through each shard's index, and the README's PyTorch recipe."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from recordlib import check_indexes, collect, read_file, write_file

from tfclassify import make_dataset, testing
from tfclassify.convert import convert
from tfclassify.core import interop, metadata, schema
from tfclassify.core.errors import DataError, InputError, OutputError
from tfclassify.core.options import ConvertOptions, ReadOptions
from tfclassify.verify import verify

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIDE = 40  # every demo image is SIDE x SIDE: TFDS's full-size images compare as they are


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> metadata.DatasetInfo:
    """The demo's corpus (4 shapes), small, converted into several shards per split."""
    root = tmp_path_factory.mktemp("interop")
    testing.make_shapes_corpus(root / "images", per_class=6, seed=3, min_side=SIDE, max_side=SIDE)
    return convert(_options(str(root / "images"), str(root / "out")))


def _options(input_dir: str, output_dir: str, **kw) -> ConvertOptions:
    defaults = dict(shard_size_mb=0.01, validation_fraction=0.25, quiet=True)
    return ConvertOptions(input_dir=input_dir, output_dir=output_dir, **{**defaults, **kw})


@pytest.fixture(scope="module")
def tfds():
    return pytest.importorskip("tensorflow_datasets")  # slow to import: once per module


def _reader(directory: str, split: str) -> dict[str, dict]:
    """tfclassify's reader at full size, by key: {"image", "label"}; JPEGs decoded
    with TF's default IDCT, as TFDS's `Image` decodes them."""
    options = ReadOptions(
        resize="squash", normalize="none", dtype="uint8", dct_method="INTEGER_FAST"
    )
    ds = make_dataset(
        directory, options, split=split, image_size=SIDE, batch_size=64, shuffle=False
    )
    out = collect(ds)
    return {
        k.decode(): {"image": out["image"][i], "label": out["label"][i]}
        for i, k in enumerate(out["key"])
    }


def test_tfds_reads_the_converted_dataset(demo, tfds):
    """Counts per split, shard lengths, label names, and the decoded pixels and
    labels of every record equal tfclassify's reader's."""
    builder = tfds.builder_from_directory(demo.directory)
    info = builder.info
    assert info.name == demo.name and set(info.splits) == set(demo.splits)
    label = info.features[schema.LABEL]
    assert tuple(label.names) == demo.labels
    for name, split in demo.splits.items():
        assert info.splits[name].num_examples == split.num_examples
        assert info.splits[name].shard_lengths == [s.num_examples for s in split.shards]
        assert info.splits[name].num_bytes == split.num_bytes
        want = _reader(demo.directory, name)
        got = {}
        for ex in tfds.as_numpy(builder.as_dataset(split=name, shuffle_files=False)):
            image = ex[schema.ENCODED]
            assert image.dtype == np.uint8 and image.shape == (SIDE, SIDE, 3)
            assert label.int2str(ex[schema.LABEL]) == ex[schema.TEXT].decode()
            got[ex[schema.FILENAME].decode()] = {"image": image, "label": ex[schema.LABEL]}
        assert sorted(got) == sorted(want)
        for key, ex in got.items():
            assert ex["label"] == want[key]["label"], key
            np.testing.assert_array_equal(ex["image"], want[key]["image"], err_msg=key)
    # The supervised keys: (image, label) pairs, as Keras takes them.
    image, lab = next(iter(builder.as_dataset(split="train", as_supervised=True)))
    assert image.shape == (SIDE, SIDE, 3) and lab.dtype.name == "int64"


def test_tfds_data_dir_layout(demo, tfds, tmp_path):
    """Copied into TFDS's `data_dir/NAME/VERSION/`, `tfds.load(NAME, data_dir=...)`
    finds it, and `make_dataset(data_dir/NAME)` reads the highest version there."""
    home = tmp_path / "tensorflow_datasets"
    shutil.copytree(demo.directory, home / demo.name / interop.TFDS_VERSION)
    (home / demo.name / "0.9.0").mkdir()  # an older, empty version: not picked
    ds = tfds.load(demo.name, data_dir=str(home), split="validation")
    assert len(list(ds)) == demo.splits["validation"].num_examples
    ds, info = make_dataset(str(home / demo.name), split="validation", image_size=8, with_info=True)
    assert info.directory == str(home / demo.name / interop.TFDS_VERSION)
    assert verify(str(home / demo.name)).directory == info.directory
    assert sum(int(b["label"].shape[0]) for b in ds) == demo.splits["validation"].num_examples


def test_a_tfds_dataset_not_converted_by_tfclassify_is_named(tmp_path):
    (tmp_path / metadata.TFDS_INFO_FILE).write_text("{}")
    with pytest.raises(InputError, match="TFDS dataset that tfclassify did not convert"):
        make_dataset(str(tmp_path), image_size=8)


def test_indexes_land_on_record_boundaries(demo):
    assert check_indexes(demo) == demo.accepted


def _copy(demo: metadata.DatasetInfo, tmp_path) -> metadata.DatasetInfo:
    out = str(tmp_path / "copy")
    shutil.copytree(demo.directory, out)
    return metadata.load(out)


@pytest.mark.parametrize("damage", ["swap", "size", "missing", "stale_json"])
def test_verify_checks_the_indexes(demo, tmp_path, damage):
    info = _copy(demo, tmp_path)
    shard = info.splits["train"].shards[1]
    path = metadata.file_path(info.directory, shard.index.file)
    lines = read_file(path).splitlines(keepends=True)
    if damage == "missing":
        os.remove(path)
        match = "missing"
    else:
        if damage == "swap":
            lines[0], lines[1] = lines[1], lines[0]
        else:
            offset, size = lines[-1].split()
            lines[-1] = offset + b" " + str(int(size) + 1).encode() + b"\n"
        raw = b"".join(lines)
        write_file(path, raw)
        match = "sha256"
        if damage == "stale_json":  # dataset.json updated to match: the content is checked
            d = json.loads(read_file(os.path.join(info.directory, metadata.METADATA_FILE)))
            entry = d["splits"]["train"]["shards"][1]["index"]
            entry["num_bytes"] = len(raw)
            entry["sha256"] = hashlib.sha256(raw).hexdigest()
            write_file(os.path.join(info.directory, metadata.METADATA_FILE), json.dumps(d).encode())
            match = "is not record"
    with pytest.raises(DataError, match=re.escape(os.path.basename(path)) + ".*" + match):
        verify(info.directory)


def test_verify_checks_the_tfds_metadata(demo, tmp_path):
    info = _copy(demo, tmp_path)
    path = os.path.join(info.directory, metadata.TFDS_INFO_FILE)
    d = json.loads(read_file(path))
    d["splits"][0]["shardLengths"][0] = "1"
    write_file(path, json.dumps(d).encode())
    with pytest.raises(DataError, match="shardLengths"):
        verify(info.directory)
    os.remove(path)
    with pytest.raises(DataError, match=f"{metadata.TFDS_INFO_FILE}: missing"):
        verify(info.directory)


def test_a_dataset_json_without_indexes_still_loads(demo, tmp_path):
    """A dataset converted before the sidecars existed: no index entries, no index
    folder, no TFDS files. It loads, verifies, reads, and an overwrite replaces it."""
    info = _copy(demo, tmp_path)
    meta = os.path.join(info.directory, metadata.METADATA_FILE)
    d = json.loads(read_file(meta))
    for split in d["splits"].values():
        for shard in split["shards"]:
            del shard["index"]
    write_file(meta, json.dumps(d).encode())
    shutil.rmtree(os.path.join(info.directory, schema.INDEX_DIR))
    for name in interop.TFDS_FILES:
        os.remove(os.path.join(info.directory, name))
    old = verify(info.directory)
    assert all(s.index is None for split in old.splits.values() for s in split.shards)
    ds = make_dataset(info.directory, split="validation", image_size=8, batch_size=64)
    assert sum(int(b["label"].shape[0]) for b in ds) == demo.splits["validation"].num_examples
    images = os.path.join(os.path.dirname(demo.directory), "images")
    again = convert(_options(images, info.directory, overwrite=True))
    assert check_indexes(again) == demo.accepted


def test_index_file_must_have_its_one_name(demo, tmp_path):
    info = _copy(demo, tmp_path)
    meta = os.path.join(info.directory, metadata.METADATA_FILE)
    d = json.loads(read_file(meta))
    d["splits"]["train"]["shards"][0]["index"]["file"] = "../elsewhere.idx"
    write_file(meta, json.dumps(d).encode())
    with pytest.raises(InputError, match=r"shards\[0\].index.file must be"):
        metadata.load(info.directory)


@pytest.mark.parametrize("where", ["index_file", "index_folder_is_a_file"])
def test_overwrite_refuses_an_index_that_is_not_ours(demo, tmp_path, where):
    info = _copy(demo, tmp_path)
    index_dir = os.path.join(info.directory, schema.INDEX_DIR)
    if where == "index_file":
        path = metadata.file_path(info.directory, info.splits["train"].shards[0].index.file)
        write_file(path, b"0 1\n")  # changed since it was written
    else:
        shutil.rmtree(index_dir)
        write_file(index_dir, b"mine")
        path = index_dir
    images = os.path.join(os.path.dirname(demo.directory), "images")
    with pytest.raises(OutputError, match=f"{re.escape(path)} was not created by tfclassify"):
        convert(_options(images, info.directory, overwrite=True))


def _readme_block(heading: str) -> str:
    """The first ```python block after `heading` in the README."""
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        text = f.read()
    after = text[text.index(heading) :]
    return after.split("```python\n", 1)[1].split("```", 1)[0]


def test_tfrecord_package_reads_every_record(demo):
    """The README's recipe, in a process without TensorFlow (the `tfrecord` package
    and TF each register the Example protos): every record of every split, with the
    bytes and labels tfclassify's parser gives, and sharded reads through the index."""
    if importlib.util.find_spec("tfrecord") is None:  # imported in the subprocess only
        pytest.skip("the tfrecord package is not installed")
    want = {}
    for split in demo.splits.values():
        for shard in split.shards:
            for offset, _ in interop.parse_dali_index(
                read_file(metadata.file_path(demo.directory, shard.index.file))
            ):
                raw = read_file(os.path.join(demo.directory, shard.file))
                length = int.from_bytes(raw[offset : offset + 8], "little")
                record = schema.parse(raw[offset + 12 : offset + 12 + length])
                want[record.filename] = [record.sha256, record.label]
    script = _readme_block("### PyTorch") + textwrap.dedent(
        """
        import hashlib, json, sys
        from tfrecord.reader import tfrecord_loader

        out = sys.argv[1]
        got = {}
        for split in ("train", "validation"):
            for encoded, label, key in records(out, split):
                got[key] = [hashlib.sha256(encoded).hexdigest(), label]
        shard = json.load(open(out + "/dataset.json"))["splits"]["train"]["shards"][0]
        halves = [
            len(list(tfrecord_loader(out + "/" + shard["file"], out + "/" + shard["index"]["file"],
                                     None, shard=(i, 2))))
            for i in range(2)
        ]
        assert sum(halves) == shard["num_examples"], halves
        assert "tensorflow" not in sys.modules
        print(json.dumps(got))
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    p = subprocess.run(
        [sys.executable, "-c", script, demo.directory],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr[-2000:]
    assert json.loads(p.stdout) == want


def test_shard_names_follow_tfds_past_99999_shards():
    """TFDS pads the shard number to the count's digits (5 at least)."""
    assert schema.shard_name("d", "train", 5, 123456) == "d-train.tfrecord-000005-of-123456"
    assert schema.parse_shard_name("d-train.tfrecord-00005-of-123456") is None
