"""Bounded fuzzing of the two parsers that read untrusted bytes: the format sniffer and
image inspection (`images`), and the record readers (`verification.check_records`, verify's;
`make_dataset`'s exact and default paths). Random and mutated inputs (bit flips,
truncations, splices of valid JPEG/PNG files and shards, dropped, duplicated and
zeroed records) may give a verdict or raise the library's typed errors, nothing else,
and never hang.

The default suite runs a few dozen cases; `-m slow` runs the full budget. Every case is
derived from a fixed seed, so a failure names a case that reproduces.
"""

from __future__ import annotations

import bisect
import dataclasses
import hashlib
import itertools
import os
import random
import shutil
import threading
from collections.abc import Callable

import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from recordlib import (
    collect,
    make_record,
    read_file,
    save_dataset_info,
    write_file,
    write_shard,
)

from tfclassify import testing
from tfclassify.conversion import images
from tfclassify.core import metadata, schema
from tfclassify.core.errors import DataError, TfclassifyError
from tfclassify.core.options import ReadOptions
from tfclassify.reading import dataset as data
from tfclassify.reading import verification
from tfclassify.verify import verify

# Every verdict `images.inspect` may give: a stored format, or one of these skip codes.
SKIP_CODES = {
    images.EMPTY,
    images.NOT_IMAGE,
    images.TRUNCATED,
    images.UNDECODABLE,
    images.TOO_LARGE,
    images.UNSUPPORTED,
}
# Small pixel caps: a mutated header may claim any size, and a fuzz run must stay
# bounded in memory and time (the cap itself is part of what is checked).
CONFIGS = (
    images.ImageConfig(max_pixels=1 << 20),
    images.ImageConfig(validate="header", max_pixels=1 << 20),
    images.ImageConfig(validate="none", max_pixels=1 << 22),
    images.ImageConfig(image_format="jpeg", max_side=48, jpeg_quality=80, max_pixels=1 << 20),
    images.ImageConfig(image_format="png", resize_shorter_side=24, max_pixels=1 << 20),
)
HANG_SECONDS = 120


@pytest.fixture(scope="module")
def image_seeds(tmp_path_factory) -> list[bytes]:
    """Every hostile kind's bytes: valid JPEG/PNG/GIF/BMP/WebP/TIFF and broken ones."""
    kinds = testing.make_hostile_files(tmp_path_factory.mktemp("fuzz_seeds"))
    return [read_file(path) for path in kinds.values()]


def bounded(fn: Callable[[], object], what: str) -> object:
    """`fn()` on a daemon thread; fails the test if it runs past HANG_SECONDS."""
    result: dict[str, object] = {}

    def run() -> None:
        try:
            result["value"] = fn()
        except BaseException as e:  # handed to the test's thread
            result["error"] = e

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(HANG_SECONDS)
    if thread.is_alive():
        pytest.fail(f"hung for {HANG_SECONDS} s: {what}")
    if "error" in result:
        raise result["error"]  # type: ignore[misc]
    return result["value"]


# ---------------------------------------------------------------- the sniffer


def check_verdict(v: images.Inspected, data_: bytes) -> None:
    """What every verdict promises: a known skip code, or a storable image."""
    if not v.ok:
        assert v.format is None and v.data is None
        assert images.reason_code(v.skip_reason) in SKIP_CODES, v.skip_reason
        assert "\n" not in v.skip_reason, v.skip_reason
        return
    assert v.format in schema.FORMATS, v
    assert v.height >= 1 and v.width >= 1 and v.channels in (1, 3), v
    stored = data_ if v.data is None else v.data
    assert images.sniff(stored[: images.HEAD_BYTES]) == v.format, v


def check_sniffer(data_: bytes) -> None:
    head = data_[: images.HEAD_BYTES]
    fmt = images.sniff(head)
    assert fmt in (None, "jpeg", "png", "gif", "bmp", "tiff", "webp")
    refused = images.refuse_by_head(head)
    if refused is not None:
        check_verdict(refused, data_)
    for cfg in CONFIGS:
        quick = images.inspect_without_pillow(data_, cfg)
        if quick is not None:
            check_verdict(quick, data_)
        check_verdict(images.inspect(data_, cfg), data_)
    # The path of a file TF's decoder rejected: Pillow decodes and re-encodes it.
    check_verdict(images.inspect(data_, CONFIGS[0], reencode="TF rejected it"), data_)


@st.composite
def mutated_images(draw, seeds: list[bytes]) -> bytes:
    """A seed file (or random bytes behind a known magic) after up to 4 mutations."""
    if draw(st.integers(0, 9)) == 0:
        magic = draw(st.sampled_from([b"", b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF89a"]))
        return magic + draw(st.binary(max_size=256))
    out = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "cut", "splice", "insert", "zero", "dup"]))
        size = max(len(out), 1)
        # Half of the positions in the first 64 bytes, where the headers are.
        at = draw(st.one_of(st.integers(0, min(63, size - 1)), st.integers(0, size - 1)))
        if op == "flip" and out:
            out[at % len(out)] ^= 1 << draw(st.integers(0, 7))
        elif op == "cut":
            del out[at:]
        elif op == "splice":
            donor = draw(st.sampled_from(seeds))
            start = draw(st.integers(0, max(len(donor) - 1, 0)))
            out[at:] = donor[start:]
        elif op == "insert":
            out[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif op == "zero":
            n = draw(st.integers(1, 512))
            out[at : at + n] = bytes(len(out[at : at + n]))
        elif op == "dup":
            n = draw(st.integers(1, 512))
            out[at:at] = out[at : at + n]
    return bytes(out)


def fuzz_sniffer(seeds: list[bytes], examples: int) -> None:
    """`examples` cases through `check_sniffer`; derandomized: the same on every run."""

    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(mutated_images(seeds))
    def run(case: bytes) -> None:
        check_sniffer(case)

    run()


# Pillow warns about the damage it reads past (corrupt EXIF, TIFF tags beyond the end).
PILLOW_WARNINGS = pytest.mark.filterwarnings("ignore::UserWarning:PIL")


@PILLOW_WARNINGS
def test_sniffer_fuzz(image_seeds):
    fuzz_sniffer(image_seeds, examples=60)


@pytest.mark.slow
@PILLOW_WARNINGS
def test_sniffer_fuzz_full(image_seeds):
    fuzz_sniffer(image_seeds, examples=3000)


# ---------------------------------------------------------------- the record readers

GOOD = [make_record(i, 16 + 3 * i, 20, "jpeg" if i % 2 else "png", seed=11) for i in range(5)]
READ = ReadOptions(image_size=8, batch_size=4)


def _frames(records: list[bytes]) -> list[int]:
    """Byte offsets of each record's frame, and the end of the last."""
    offsets = [0]
    for r in records:
        offsets.append(offsets[-1] + len(r) + schema.TFRECORD_OVERHEAD)
    return offsets


def mutate_shard(raw: bytes, rng: random.Random, donors: list[bytes]) -> tuple[bytes, str]:
    """A shard of GOOD after 1-3 kinds of damage; returns it and what was done."""
    serialized = [schema.serialize(r) for r in GOOD]
    at = _frames(serialized)
    out = bytearray(raw)
    done = []
    for _ in range(rng.randint(1, 3)):
        op = rng.choice(
            [
                "flip",
                "cut",
                "cut_frame",
                "drop",
                "dup",
                "swap",
                "zero",
                "splice",
                "header",
                "append",
                "empty",
            ]
        )
        i = rng.randrange(len(GOOD))
        pos = rng.randrange(max(len(out), 1))
        if op == "flip" and out:
            for _ in range(rng.randint(1, 4)):
                out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
        elif op == "cut":
            del out[pos:]
        elif op == "cut_frame":  # at a record boundary: nothing left to frame wrongly
            del out[at[i] :]
        elif op == "drop" and len(out) == len(raw):
            del out[at[i] : at[i + 1]]
        elif op == "dup" and len(out) == len(raw):
            out[at[i] : at[i]] = raw[at[i] : at[i + 1]]
        elif op == "swap" and len(out) == len(raw) and i + 2 < len(at):
            out[at[i] : at[i + 2]] = raw[at[i + 1] : at[i + 2]] + raw[at[i] : at[i + 1]]
        elif op == "zero":
            n = rng.randint(1, 512)
            out[pos : pos + n] = bytes(len(out[pos : pos + n]))
        elif op == "splice":
            donor = rng.choice(donors)
            start = rng.randrange(len(donor))
            out[pos:pos] = donor[start : start + rng.randint(1, 2048)]
        elif op == "header" and len(out) == len(raw):
            out[at[i] + rng.randrange(12)] ^= 1 << rng.randrange(8)
        elif op == "append":
            out += rng.randbytes(rng.randint(1, 40))
        elif op == "empty":
            out = bytearray()
        done.append(op)
    return bytes(out), "+".join(done)


def mutate_record(rng: random.Random, donors: list[bytes]) -> tuple[list[bytes], str]:
    """GOOD with one record's bytes damaged *before* framing: every CRC is valid, so
    only the Example parse, the image decode or the sha256 check can find it."""
    records = [schema.serialize(r) for r in GOOD]
    i = rng.randrange(len(records))
    op = rng.choice(["flip", "cut", "splice", "image", "garbage"])
    r = bytearray(records[i])
    if op == "flip":
        for _ in range(rng.randint(1, 8)):
            r[rng.randrange(len(r))] ^= 1 << rng.randrange(8)
    elif op == "cut":
        del r[rng.randrange(len(r)) :]
    elif op == "splice":
        donor = rng.choice(donors)
        start = rng.randrange(len(donor))
        r[rng.randrange(len(r)) :] = donor[start : start + rng.randint(1, 2048)]
    elif op == "image":  # a parseable Example whose image is damaged
        encoded = bytearray(GOOD[i].encoded)
        encoded[rng.randrange(len(encoded)) :] = b""
        r = bytearray(schema.serialize(dataclasses.replace(GOOD[i], encoded=bytes(encoded))))
    else:
        r = bytearray(rng.randbytes(rng.randint(0, 64)))
    records[i] = bytes(r)
    return records, f"record {i}: {op}"


@pytest.fixture(scope="module")
def shard_seed(tmp_path_factory, image_seeds) -> dict:
    """The pristine shard's bytes, and donors to splice from (images, another shard)."""
    path = str(tmp_path_factory.mktemp("fuzz_shard") / "good.tfrecord")
    write_shard(path, GOOD)
    other = str(tmp_path_factory.mktemp("fuzz_other") / "other.tfrecord")
    write_shard(other, [make_record(i, 30, 30, "jpeg", seed=3) for i in range(3)])
    donors = [seed for seed in image_seeds if seed]  # not the zero-byte file
    return {"raw": read_file(path), "donors": [*donors, read_file(other)]}


def _cases(shard_seed: dict, seed: int, n: int) -> list[tuple[bytes, str]]:
    rng = random.Random(seed)
    return [mutate_shard(shard_seed["raw"], rng, shard_seed["donors"]) for _ in range(n)]


def _write_dataset(root: str, shards_raw: list[bytes]) -> list[str]:
    """Damaged shards under a dataset.json that lists them as they were written whole:
    the reader must account for every record that dataset.json promises."""
    os.makedirs(root, exist_ok=True)
    whole = hashlib.sha256(b"").hexdigest()  # any: the readers do not hash shards
    infos, paths = [], []
    for i, raw in enumerate(shards_raw):
        name = schema.shard_name("data", "train", i, len(shards_raw))
        paths.append(os.path.join(root, name))
        write_file(paths[-1], raw)
        infos.append(metadata.ShardInfo(name, len(GOOD), len(raw), whole))
    save_dataset_info(root, {"train": metadata.SplitInfo("train", tuple(infos))})
    return paths


def _count(ds: tf.data.Dataset) -> int:
    out = collect(ds)
    if out:
        assert out["image"].shape[1:] == (8, 8, 3)
    return len(out.get("key", ()))


def check_strict(source, expected: int | None, what: str) -> None:
    """Strict reading: every record, or the library's one error naming the damage."""
    try:
        n = bounded(lambda: _count(data.make_dataset(source, READ)), what)
    except tf.errors.InvalidArgumentError as e:
        assert "tfclassify:" in e.message, f"{what}: {e.message[:300]}"
        return
    except TfclassifyError:
        return
    if expected is not None:  # counts known from dataset.json: nothing lost unseen
        assert n == expected, f"{what}: read {n} of {expected} without an error"


def check_verify_reader(path: str, raw: bytes, what: str) -> None:
    """verify's record parser: a record count, or a DataError."""
    write_file(path, raw)
    try:
        n = bounded(lambda: verification.check_records(path, num_labels=3), what)
    except TfclassifyError:
        return
    assert n >= 0, what


def test_record_fuzz_verify_reader(tmp_path, shard_seed):
    path = str(tmp_path / "case.tfrecord")
    for raw, what in _cases(shard_seed, seed=1, n=16):
        check_verify_reader(path, raw, what)


def test_record_fuzz_verify_reader_framed_garbage(tmp_path, shard_seed):
    path = str(tmp_path / "case.tfrecord")
    rng = random.Random(2)
    for _ in range(24):
        records, what = mutate_record(rng, shard_seed["donors"])
        write_shard(path, records)
        check_verify_reader(path, read_file(path), what)


def test_record_fuzz_readers(tmp_path, shard_seed):
    """A few cases through each reader path (each strict case builds a pipeline, ~1 s)."""
    cases = _cases(shard_seed, seed=3, n=16)
    skip = dataclasses.replace(READ, skip_errors=True)
    # Skip mode, every case in one pipeline: never raises.
    paths = [str(tmp_path / f"skip{i}.tfrecord") for i in range(len(cases))]
    for path, (raw, _) in zip(paths, cases, strict=True):
        write_file(path, raw)
    bounded(lambda: _count(data.make_dataset(paths, skip)), "skip mode over 16 cases")
    # Strict, exact path (no dataset.json) and default path (counts from dataset.json).
    raw, what = cases[1]
    check_strict([paths[1]], None, f"exact path, {what}")
    check_strict(_write_dataset(str(tmp_path / "ds"), [raw]), len(GOOD), f"default path, {what}")


@pytest.mark.slow
def test_record_fuzz_full(tmp_path, shard_seed):
    """The full budget: 400 verify cases, 400 skip-mode cases, 40 + 40 strict ones."""
    path = str(tmp_path / "case.tfrecord")
    for raw, what in _cases(shard_seed, seed=10, n=400):
        check_verify_reader(path, raw, what)
    skip = dataclasses.replace(READ, skip_errors=True)
    for batch in range(8):
        cases = _cases(shard_seed, seed=100 + batch, n=50)
        paths = [str(tmp_path / f"skip{batch}-{i}.tfrecord") for i in range(len(cases))]
        for p, (raw, _) in zip(paths, cases, strict=True):
            write_file(p, raw)
        bounded(lambda p=paths: _count(data.make_dataset(p, skip)), f"skip batch {batch}")
    for i, (raw, what) in enumerate(_cases(shard_seed, seed=200, n=40)):
        p = str(tmp_path / f"strict{i}.tfrecord")
        write_file(p, raw)
        check_strict([p], None, f"exact path, case {i}: {what}")
        root = str(tmp_path / f"ds{i}")
        _write_dataset(root, [raw])
        check_strict(root, len(GOOD), f"default path, case {i}: {what}")
    # Framed garbage (valid CRCs) through the readers: parse and decode failures.
    rng = random.Random(300)
    for i in range(40):
        records, what = mutate_record(rng, shard_seed["donors"])
        p = str(tmp_path / f"framed{i}.tfrecord")
        write_shard(p, records)
        check_strict([p], None, f"exact path, framed case {i}: {what}")
        check_strict(
            _write_dataset(str(tmp_path / f"fds{i}"), [read_file(p)]),
            len(GOOD),
            f"default path, framed case {i}: {what}",
        )


def test_record_fuzz_skip_mode_accounts_against_dataset_json(tmp_path, shard_seed):
    """Skip mode with dataset.json: every promised record is read or counted skipped."""
    cases = _cases(shard_seed, seed=4, n=16)
    paths = _write_dataset(str(tmp_path / "ds"), [raw for raw, _ in cases])
    stats = data.ReadStats()
    skip = dataclasses.replace(READ, skip_errors=True)
    n = bounded(lambda: _count(data.make_dataset(paths, skip, stats=stats)), "skip mode")
    expected = len(GOOD) * len(cases)
    assert n + stats.skipped - stats.extra == expected, (
        f"read {n} + skipped {stats.skipped} - extra {stats.extra} != {expected}"
    )


# ---------------------------------------------------------------- single-bit flips


def flip_cases(dataset: dict, seed: int, n: int) -> list[tuple[str, int, int]]:
    """(shard file, byte, bit): seeded positions over every byte of every shard."""
    info = metadata.load(dataset["dir"])
    files = [s.file for split in info.splits.values() for s in split.shards]
    sizes = [os.path.getsize(os.path.join(dataset["dir"], f)) for f in files]
    starts = list(itertools.accumulate(sizes, initial=0))
    rng = random.Random(seed)
    cases = []
    for _ in range(n):
        at = rng.randrange(starts[-1])
        i = bisect.bisect_right(starts, at) - 1
        cases.append((files[i], at - starts[i], rng.randrange(8)))
    return cases


def check_flip(dataset: dict, tmp_path, case: tuple[str, int, int]) -> None:
    """One flipped bit: verify and the strict reader both fail, naming the shard."""
    file, at, bit = case
    root = str(tmp_path / f"flip-{file}-{at}-{bit}")
    shutil.copytree(dataset["dir"], root)
    path = os.path.join(root, file)
    raw = bytearray(read_file(path))
    raw[at] ^= 1 << bit
    write_file(path, bytes(raw))
    with pytest.raises(DataError, match=path):
        verify(root)
    split = schema.parse_shard_name(file)["split"]
    with pytest.raises(tf.errors.InvalidArgumentError, match=path):
        bounded(
            lambda: _count(data.make_dataset(root, dataclasses.replace(READ, split=split))),
            f"bit {bit} of byte {at} of {file}",
        )


def test_single_bit_flips_are_caught_naming_the_shard(dataset, tmp_path):
    for case in flip_cases(dataset, seed=5, n=2):
        check_flip(dataset, tmp_path, case)


@pytest.mark.slow
def test_single_bit_flips_are_caught_naming_the_shard_32(dataset, tmp_path):
    for case in flip_cases(dataset, seed=6, n=32):
        check_flip(dataset, tmp_path, case)
