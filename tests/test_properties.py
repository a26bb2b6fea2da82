"""Property tests: any set of records written through the real shard plan and shard
writer reads back as the same bytes, in the plan's order, all of them, in shards no
bigger than the target plus one record.

The records are `schema.Record`s with arbitrary payloads (0-200 KB, not images: the
writer and the record readers never look inside `image/encoded`), arbitrary labels and
non-UTF-8 file names. Each example goes `plan.plan_shards` -> `shards.write_shard` ->
`verification.verify_shard` (verify's reader: CRCs, every payload's sha256, counts) and
`records.tfrecords` (the exact reader's shard reader) -> `schema.parse`.
"""

from __future__ import annotations

import hashlib
import os
import random
import tempfile

import pytest
import tensorflow as tf
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tfclassify.conversion import plan, shards
from tfclassify.core import interop, schema, shardfiles
from tfclassify.core.tfdata import plain
from tfclassify.reading import records, verification

LABELS = ("cat", "dög", "日本", "two words")
KB = 1024
MAX_RECORD = 200 * KB
# No example database: deterministic runs leave no .hypothesis folder in the checkout.
FAST = settings(
    max_examples=10,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SLOW = settings(
    max_examples=120,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _payload(seed: int, index: int, size: int, kind: int) -> bytes:
    """Random bytes, or a run of one byte (zeros, 0xff): what TFRecord framing might
    confuse with its own headers if it looked."""
    if kind == 0:
        return random.Random(f"{seed}/{index}").randbytes(size)
    return bytes([0 if kind == 1 else 0xFF]) * size


@st.composite
def record_sets(draw, max_records: int, budget: int) -> dict:
    """A set of records (0..max_records, each payload 0..200 KB, all payloads together
    at most `budget` bytes), a shard target and a validation fraction."""
    n = draw(st.integers(0, max_records))
    seed = draw(st.integers(0, 2**32 - 1))
    sizes = st.one_of(st.integers(0, 64), st.integers(0, 4 * KB), st.integers(0, MAX_RECORD))
    remaining = budget
    recs = []
    for i in range(n):
        size = min(draw(sizes), remaining)
        remaining -= size
        # The rest from the seed: one draw per record keeps generation fast.
        rng = random.Random(f"{seed}/{i}")
        label = rng.randrange(len(LABELS))
        # A file name as os.listdir gives one that is not UTF-8: its bytes held as
        # surrogates, written back as the original bytes.
        raw_name = rng.randbytes(rng.randrange(7))
        payload = _payload(seed, i, size, rng.randrange(6) // 4)
        recs.append(
            schema.Record(
                encoded=payload,
                format="jpeg" if i % 2 else "png",
                label=label,
                text=LABELS[label],
                filename=f"{LABELS[label]}/{i}-" + raw_name.decode("utf-8", "surrogateescape"),
                height=1 + i % 7,
                width=1 + i % 5,
                channels=(1, 3)[i % 2],
                sha256=hashlib.sha256(payload).hexdigest(),
            )
        )
    return {
        "records": recs,
        # Balanced shards around a target anywhere from below one record to above all
        # of them; at most ~24 shards per split keep an example fast.
        "target_draw": draw(st.integers(1, 2**24)),
        "validation_fraction": draw(st.sampled_from([0.0, 0.25, 0.5])),
        "seed": seed,
    }


def _read_shards(paths: list[str]) -> list[bytes]:
    """Every serialized record of `paths` in order, through the exact reader's shard
    reader (one pipeline: building one per shard costs ~0.1 s each)."""
    if not paths:
        return []
    ds = tf.data.Dataset.from_tensor_slices(paths).flat_map(
        plain(lambda p: records.tfrecords(p, buffer_bytes=64 * KB))
    )
    # Batched: one eager step per record would cost ~1 ms each.
    return [r for batch in ds.batch(1024).as_numpy_iterator() for r in batch]


def check_write_then_read(case: dict) -> None:
    recs = case["records"]
    serialized = [schema.serialize(r) for r in recs]
    sizes = [len(s) + schema.TFRECORD_OVERHEAD for s in serialized]
    total = sum(sizes)
    target = max(case["target_draw"] % (total + 1), -(-total // 24), 1)
    items = [
        plan.Item(key=i, label=r.label, split="train", size=sizes[i]) for i, r in enumerate(recs)
    ]
    shard_plan = plan.plan_shards(
        items,
        target_bytes=target,
        seed=case["seed"],
        validation_fraction=case["validation_fraction"],
    )
    with tempfile.TemporaryDirectory() as out:
        results = []
        for sh in shard_plan:
            path = os.path.join(out, sh.filename("data"))
            result = shards.write_shard(
                path, (serialized[k] for k in sh.keys), expected_bytes=sh.num_bytes
            )
            results.append(result)
            # The writer's own account matches the plan and the file on disk.
            assert result.num_examples == len(sh.keys)
            assert result.num_bytes == sh.num_bytes == os.path.getsize(path)
            # Each shard: at most the target plus one of its own records.
            assert sh.num_bytes <= target + max(sizes[k] for k in sh.keys)
            assert shardfiles.file_sha256(path) == result.sha256
        # verify's reader on the shard of fewest records (its eager reads cost ~1 ms a
        # record): size, sha256, every CRC, every payload's sha256 and label, the count.
        for result in sorted(results, key=lambda r: r.num_examples)[:1]:
            verification.verify_shard(
                os.path.join(out, result.file), result, num_labels=len(LABELS)
            )
        # Nothing else was left in the output folder (no temporaries), and each
        # shard's index lists its records' framed sizes, from byte 0.
        folders = [schema.INDEX_DIR] if results else []
        assert sorted(os.listdir(out)) == sorted([*folders, *(r.file for r in results)])
        index_dir = os.path.join(out, schema.INDEX_DIR)
        assert sorted(os.listdir(index_dir) if results else []) == sorted(
            r.file + schema.INDEX_SUFFIX for r in results
        )
        for sh, r in zip(shard_plan, results, strict=True):
            with open(os.path.join(out, r.index.file), "rb") as f:
                entries = interop.parse_dali_index(f.read())
            framed = [len(serialized[k]) + schema.TFRECORD_OVERHEAD for k in sh.keys]
            assert [size for _, size in entries] == framed
            assert [offset for offset, _ in entries] == [
                sum(framed[:i]) for i in range(len(framed))
            ]
        # The same bytes in the same order, through the reader, and the same records.
        read = _read_shards([os.path.join(out, r.file) for r in results])
        assert read == [serialized[k] for sh in shard_plan for k in sh.keys]
        assert [schema.parse(r) for r in read] == [recs[k] for sh in shard_plan for k in sh.keys]
    # Every record in exactly one shard; the counts sum to the input.
    keys = [k for sh in shard_plan for k in sh.keys]
    assert sorted(keys) == list(range(len(recs)))
    assert sum(r.num_examples for r in results) == len(recs)
    assert sum(r.num_bytes for r in results) == total
    # Shards are numbered 0..count-1 per split, in the order they were planned.
    for split in {sh.split for sh in shard_plan}:
        mine = [sh for sh in shard_plan if sh.split == split]
        assert [(sh.index, sh.count) for sh in mine] == [(i, len(mine)) for i in range(len(mine))]


def _case(sizes: list[int], target: int) -> dict:
    """A fixed record set for the edge cases hypothesis may not draw."""
    recs = []
    for i, size in enumerate(sizes):
        payload = _payload(i, i, size, 0)
        recs.append(
            schema.Record(
                payload,
                "jpeg",
                i % 2,
                LABELS[i % 2],
                f"f{i}",
                1,
                1,
                3,
                hashlib.sha256(payload).hexdigest(),
            )
        )
    return {"records": recs, "target_draw": target, "validation_fraction": 0.0, "seed": 0}


@FAST
@given(record_sets(max_records=500, budget=2 * 2**20))
@example(_case([], 1))  # no records: no shards
@example(_case([0], 1))  # an empty payload, a target below one record
@example(_case([MAX_RECORD, 0, MAX_RECORD], MAX_RECORD))  # the largest records
@example(_case([10] * 500, 2**24))  # the most records, one shard
def test_write_then_read_any_record_set(case):
    check_write_then_read(case)


@pytest.mark.slow
@SLOW
@given(record_sets(max_records=500, budget=48 * 2**20))
def test_write_then_read_any_record_set_large(case):
    check_write_then_read(case)
