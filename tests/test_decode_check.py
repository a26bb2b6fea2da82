"""validate=full's JPEG decode checks on tf.data's threads, and how the converter uses them."""

from __future__ import annotations

import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from recordlib import read_records

from tfclassify import convert, testing
from tfclassify.conversion import decode_check, images, plan
from tfclassify.conversion.converter import WORK_DIR
from tfclassify.core.options import ConvertOptions
from tfclassify.verify import verify


@pytest.mark.parametrize("chunk", [None, 3])
def test_verdicts_in_path_order(tmp_path, monkeypatch, capfd, chunk):
    if chunk:  # verdicts arrive a chunk at a time: positions stay right across chunks
        monkeypatch.setattr(decode_check, "_CHUNK", chunk)
    kinds = testing.make_hostile_files(tmp_path / "hostile")
    big = str(tmp_path / "big.jpg")  # a plain JPEG over the pixel cap below
    Image.new("RGB", (300, 200), (10, 200, 30)).save(big, "JPEG")
    names = [
        "unicode_name",
        "corrupt_jpeg",
        "truncated_jpeg",
        "grayscale_jpeg",
        "rgba_png",
        "cmyk_jpeg",  # not decoded here: Pillow converts it
    ]
    paths = [kinds[n] for n in names] + [str(tmp_path / "missing.jpg"), big, kinds["zero_byte"]]
    checks = decode_check.DecodeChecks(paths, max_pixels=50_000)
    assert checks.progress(wait=True) == len(paths)
    # Decoded: the two good JPEGs. Not: corrupt, truncated, a PNG (not checked here:
    # Pillow decodes it), a missing file, one over max_pixels, an empty file.
    assert [i for i in range(len(paths)) if checks.decoded(i)] == [0, 3]
    # Files that are not JPEGs, or are CMYK, never reach libjpeg's decoder, which
    # prints a line for each.
    err = capfd.readouterr().err
    assert "Not a JPEG file" not in err and "Unsupported color conversion" not in err
    assert decode_check.DecodeChecks([], 1).progress(wait=True) == 0


@pytest.mark.parametrize("checks_in", ["during_scan", "after_plan"])
def test_full_validation_leaves_plain_jpegs_to_tf(tmp_path, hostile_tree, monkeypatch, checks_in):
    """Pillow examines only what TF's check cannot vouch for; verdicts are unchanged,
    whether the checks come in while the scan runs or only after the first plan."""
    root, kinds = hostile_tree
    seen_by_pillow = set()
    real = images._inspect_with_pillow

    def spy(data, *args):
        seen_by_pillow.add(data)
        return real(data, *args)

    monkeypatch.setattr(images, "_inspect_with_pillow", spy)
    real_progress = decode_check.DecodeChecks.progress
    if checks_in == "after_plan":  # nothing known until the converter waits for it

        def late(self, wait=False, at_least=0):
            return real_progress(self, wait) if wait else 0

        monkeypatch.setattr(decode_check.DecodeChecks, "progress", late)
    plans = []
    real_plan = plan.plan_shards
    monkeypatch.setattr(plan, "plan_shards", lambda *a, **k: plans.append(1) or real_plan(*a, **k))
    info = convert(ConvertOptions(input_dir=root, output_dir=str(tmp_path / "out"), quiet=True))
    if checks_in == "after_plan":
        assert len(plans) == 2  # the rejected files' verdicts changed: planned again
    files = [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs]
    contents = {p: open(p, "rb").read() for p in files}  # noqa: SIM115
    plain = {p for p, data in contents.items() if images._plain_jpeg(data) is not None}
    # The two plain-headed JPEGs TF rejects (corrupt, truncated) go to Pillow, which
    # skips them: their verdicts change after the first plan, so the converter plans
    # again. Every other plain JPEG was decoded by TF only.
    rejected = {kinds["corrupt_jpeg"], kinds["truncated_jpeg"]}
    assert rejected <= plain and len(plain) > len(rejected)
    assert {p for p in plain if contents[p] in seen_by_pillow} == rejected
    assert info.skipped_by_reason["undecodable"] == 1
    assert info.skipped_by_reason["truncated"] == 2  # and a truncated PNG
    assert verify(info.directory).accepted == info.accepted
    assert not os.path.exists(os.path.join(info.directory, WORK_DIR))


def test_progress_waits_for_a_prefix_and_close_stops_the_checks(tmp_path):
    good = str(tmp_path / "good.jpg")
    Image.new("RGB", (64, 48), (200, 30, 10)).save(good, "JPEG")
    checks = decode_check.DecodeChecks([good] * 300, max_pixels=10_000)
    known = checks.progress(at_least=100)
    assert known >= 100 and all(checks.decoded(i) for i in range(known))
    assert checks.progress(wait=True) == 300 and checks.decoded(299)

    many = decode_check.DecodeChecks([good] * 50_000, max_pixels=10_000)
    many.close()  # e.g. the conversion failed: stop after the batch in flight
    many._thread.join(timeout=60)
    assert not many._thread.is_alive()
    assert many.progress(wait=True) < 50_000  # returns what it has, does not hang


def test_a_jpeg_tf_rejects_but_pillow_reads_is_stored_reencoded(tmp_path, monkeypatch):
    """Pillow's verdict alone would keep the original bytes, which TF's reader would
    then fail on: such a file is stored as a new JPEG decoded by Pillow."""
    root = tmp_path / "in"
    rng = np.random.default_rng(3)
    for i in range(3):
        testing.write_image(root / "cat" / f"{i}.jpg", testing.photo_like(40, 30, rng), "JPEG")
    real_init, real_decoded = decode_check.DecodeChecks.__init__, decode_check.DecodeChecks.decoded

    def init(self, paths, *args, **kwargs):
        self.paths_for_test = list(paths)
        real_init(self, paths, *args, **kwargs)

    def decoded(self, position):  # as if TF's decoder had failed on 1.jpg
        rejected = self.paths_for_test[position].endswith("1.jpg")
        return real_decoded(self, position) and not rejected

    monkeypatch.setattr(decode_check.DecodeChecks, "__init__", init)
    monkeypatch.setattr(decode_check.DecodeChecks, "decoded", decoded)
    out = str(tmp_path / "out")
    info = convert(ConvertOptions(input_dir=str(root), output_dir=out, quiet=True))
    assert info.accepted == 3
    records = read_records(info.directory)
    source = {n: (root / "cat" / n).read_bytes() for n in ("0.jpg", "1.jpg")}
    assert records["cat/0.jpg"].encoded == source["0.jpg"]  # kept as-is
    stored = records["cat/1.jpg"]
    assert stored.encoded != source["1.jpg"] and stored.format == "jpeg"
    pixels = tf.io.decode_jpeg(stored.encoded, channels=3).numpy().astype(int)
    original = np.asarray(Image.open(root / "cat" / "1.jpg").convert("RGB"), int)
    assert np.abs(pixels - original).mean() < 3  # re-encoded at quality 95
