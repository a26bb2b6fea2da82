"""Conversion on Beam (tfclassify.beam.conversion, converters/beam_convert.py): the
local converter's output byte for byte, on every runner, after retries, at a URL."""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys

import pytest
from commands import last_lines
from recordlib import check_indexes

pytest.importorskip("apache_beam")

from tfclassify import testing  # noqa: E402
from tfclassify.beam import conversion, pipeline_options  # noqa: E402
from tfclassify.conversion import shards  # noqa: E402
from tfclassify.convert import convert  # noqa: E402
from tfclassify.core import fileio, metadata  # noqa: E402
from tfclassify.core.errors import InputError, OptionsError, OutputError  # noqa: E402
from tfclassify.core.options import ConvertOptions  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "converters"))
import beam_convert  # noqa: E402

IN_PROCESS: list[str] = []
MULTI_PROCESS = ["--direct_num_workers=2", "--direct_running_mode=multi_processing"]
# The runner that retries a failed bundle (the FnApiRunner fails the job at once).
RETRYING = ["--runner=BundleBasedDirectRunner"]


def _options(input_dir: str, output_dir: str, **kw) -> ConvertOptions:
    # Several shards in both splits; converted (CMYK, alpha) and skipped files.
    defaults = dict(shard_size_mb=0.02, validation_fraction=0.25, num_workers=2, quiet=True)
    return ConvertOptions(input_dir=input_dir, output_dir=output_dir, **{**defaults, **kw})


@pytest.fixture(scope="module")
def local(tmp_path_factory, hostile_tree) -> tuple[ConvertOptions, str]:
    """The hostile tree converted by the local converter: (its options, output)."""
    out = str(tmp_path_factory.mktemp("beam_local") / "out")
    options = _options(hostile_tree[0], out)
    convert(options)
    return options, out


def _files(directory: str) -> dict[str, bytes]:
    """Every file below `directory` (the shard indexes' folder too), by relative path."""
    import tensorflow as tf

    found = {}
    for parent, _, names in tf.io.gfile.walk(directory):
        for name in names:
            path = os.path.join(parent, name)
            with tf.io.gfile.GFile(path, "rb") as f:
                found[path[len(directory) :].lstrip("/")] = f.read()
    return found


def _assert_same(local_dir: str, beam_dir: str) -> None:
    want, got = _files(local_dir), _files(beam_dir)
    assert sorted(got) == sorted(want)
    assert [name for name in want if got[name] != want[name]] == []


def _run(options: ConvertOptions, args: list[str]) -> metadata.DatasetInfo:
    return conversion.run_conversion(options, pipeline_options(args))


@pytest.mark.parametrize("args", [IN_PROCESS, MULTI_PROCESS], ids=["in_process", "multi_process"])
def test_same_bytes_as_the_local_converter(local, tmp_path, args, capfd):
    options, local_dir = local
    out = str(tmp_path / "beam")
    info = _run(dataclasses.replace(options, output_dir=out, quiet=False), args)
    _assert_same(local_dir, str(tmp_path / "beam"))
    assert check_indexes(info) == info.accepted  # each line on a record of its shard
    assert info.skipped == metadata.load(local_dir).skipped > 0
    assert set(info.splits) == {"train", "validation"}
    # Progress as the local converter shows it, where the work ran in this process
    # (stderr is not a terminal here: a line when each pass ends, once).
    err = capfd.readouterr().err
    scan, write = last_lines(err, "scan"), last_lines(err, "write")
    if args == IN_PROCESS:
        files = info.accepted + info.skipped
        assert len(scan) == 1 and scan[0].startswith(f"scan: {files}/{files} img, "), err
        assert len(write) == 1
        assert write[0].startswith(f"write: {info.accepted}/{info.accepted} img, "), err
    else:  # in the workers' processes: no bar, and none of theirs
        assert scan == write == [], err


def test_manifest_input_same_bytes(tmp_path, class_tree):
    images = shutil.copytree(class_tree, tmp_path / "images")  # beside the manifest
    rows = [
        (os.path.relpath(os.path.join(folder, name), tmp_path), os.path.basename(folder), split)
        for folder, _, names in sorted(os.walk(images))
        for i, name in enumerate(sorted(names))
        for split in ["test" if i % 4 == 0 else "train"]
    ]
    manifest = testing.make_manifest(tmp_path / "files.csv", rows, ("path", "label", "split"))
    kw = dict(manifest=str(manifest), shard_size_mb=0.05, validate="header", quiet=True)
    convert(ConvertOptions(output_dir=str(tmp_path / "local"), **kw))
    _run(ConvertOptions(output_dir=str(tmp_path / "beam"), **kw), IN_PROCESS)
    _assert_same(str(tmp_path / "local"), str(tmp_path / "beam"))


@pytest.mark.parametrize("when", ["before_rename", "after_rename"])
def test_a_retried_shard_leaves_no_partial_or_duplicate(local, tmp_path, monkeypatch, when):
    """The first shard write fails once: before its rename (the dead attempt's
    temporary left behind, as by a killed worker), or after it (the shard is there,
    the bundle fails anyway). The runner retries the bundle."""
    options, local_dir = local
    real = shards.write_shard
    failed: list[str] = []

    def flaky(path, records, before_commit=None, **kw):
        name = os.path.basename(path)

        def die_before_rename():
            if not failed:
                failed.append(name)
                folder = os.path.dirname(path)
                for entry in os.listdir(folder):
                    if fileio.temporary_target(entry) == name:  # what a kill leaves
                        shutil.copy(os.path.join(folder, entry), os.path.join(folder, entry + "x"))
                        os.rename(
                            os.path.join(folder, entry + "x"),
                            os.path.join(folder, entry[:-8] + "deadbeef"),
                        )
                raise RuntimeError("injected: worker lost before the rename")

        result = real(path, records, die_before_rename if when == "before_rename" else None, **kw)
        if not failed:
            failed.append(name)
            raise RuntimeError("injected: worker lost after the rename")
        return result

    monkeypatch.setattr(shards, "write_shard", flaky)
    out = tmp_path / "beam"
    _run(dataclasses.replace(options, output_dir=str(out)), RETRYING)
    assert len(failed) == 1
    _assert_same(local_dir, str(out))  # no temporary, no work dir, nothing twice


def test_url_output(local, tmp_path):
    """A URL output goes through tf.io.gfile (ram:// here; gs:// on a cloud)."""
    options, local_dir = local
    url = f"ram://{tmp_path.name}/out"
    info = _run(dataclasses.replace(options, output_dir=url), IN_PROCESS)
    _assert_same(local_dir, url)
    assert info.directory == url


def test_checks_before_the_pipeline_runs(local, tmp_path):
    options, _ = local
    out = tmp_path / "out"
    with pytest.raises(OptionsError, match="resume does not apply"):
        _run(dataclasses.replace(options, output_dir=str(out), resume=True), IN_PROCESS)
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match="not empty"):
        _run(dataclasses.replace(options, output_dir=str(out)), IN_PROCESS)
    with pytest.raises(InputError, match="not found"):
        _run(dataclasses.replace(options, input_dir=str(tmp_path / "none")), IN_PROCESS)
    with pytest.raises(OptionsError, match="needs a local output_dir"):
        _run(dataclasses.replace(options, output_dir="ram://x/y", overwrite=True), IN_PROCESS)
    assert os.listdir(out) == ["notes.txt"]


def test_overwrite_replaces_only_its_own_files(local, tmp_path):
    options, local_dir = local
    out = tmp_path / "out"
    beam_options = dataclasses.replace(options, output_dir=str(out), seed=7)
    _run(beam_options, IN_PROCESS)
    (out / "notes.txt").write_text("mine")
    _run(dataclasses.replace(beam_options, seed=options.seed, overwrite=True), IN_PROCESS)
    assert (out / "notes.txt").read_text() == "mine"
    (out / "notes.txt").unlink()
    replaced = metadata.load(str(out))
    assert replaced.options == metadata.load(local_dir).options
    _assert_same(local_dir, str(out))


def test_every_file_skipped(tmp_path):
    testing.make_hostile_files(tmp_path / "in" / "odd")
    for name in os.listdir(tmp_path / "in" / "odd"):
        path = tmp_path / "in" / "odd" / name
        if os.path.isfile(path):
            path.write_bytes(b"not an image")
    with pytest.raises(Exception, match="no usable images") as raised:
        _run(_options(str(tmp_path / "in"), str(tmp_path / "out")), IN_PROCESS)
    assert isinstance(raised.value, InputError)
    assert not os.path.exists(tmp_path / "out" / ".tfclassify-work")


def test_command(local, tmp_path, capsys):
    options, local_dir = local
    out = str(tmp_path / "out")
    argv = ["beam_convert", "--input_dir", options.input_dir, "--output_dir", out]
    argv += ["--shard_size_mb", "0.02", "--validation_fraction", "0.25", "--quiet"]
    assert beam_convert.main(argv) == 0
    assert f"-> {out}" in capsys.readouterr().out
    _assert_same(local_dir, out)
    assert beam_convert.main([*argv, "--resume"]) == 2
    assert "--overwrite" in capsys.readouterr().err
