"""The shard planner is pure: exact tables, no I/O."""

import array
from collections import Counter

import numpy as np
import pytest

from tfclassify.conversion import plan
from tfclassify.core import schema


def items(labels_sizes, split="train"):
    return [
        plan.Item(key=i, label=lb, split=split, size=s) for i, (lb, s) in enumerate(labels_sizes)
    ]


@pytest.mark.parametrize(
    "sizes, target, expected",
    [
        ([], 10, []),
        ([5], 10, [(0, 1)]),
        ([5, 5], 10, [(0, 2)]),
        ([5, 5, 5], 10, [(0, 2), (2, 3)]),
        ([4] * 10, 10, [(0, 3), (3, 5), (5, 8), (8, 10)]),
        ([1] * 12, 5, [(0, 4), (4, 8), (8, 12)]),
        ([30, 1, 1], 10, [(0, 1), (1, 3)]),  # a record above target gets a shard of its own
        ([1, 1, 30], 10, [(0, 3)]),  # over by less than one record: still allowed
    ],
)
def test_cut_exact(sizes, target, expected):
    assert plan.cut(sizes, target) == expected


@pytest.mark.parametrize("seed", range(20))
def test_cut_bounds_and_balance(seed):
    import random

    rng = random.Random(seed)
    sizes = [rng.randint(1, 100) for _ in range(rng.randint(1, 400))]
    target = rng.randint(50, 3000)
    chunks = plan.cut(sizes, target)
    assert chunks[0][0] == 0 and chunks[-1][1] == len(sizes)
    assert all(a < b for a, b in chunks)
    assert all(chunks[i][1] == chunks[i + 1][0] for i in range(len(chunks) - 1))
    totals = [sum(sizes[a:b]) for a, b in chunks]
    biggest = max(sizes)
    assert all(t <= target + biggest for t in totals)  # at most one record over the target
    # Balanced: every shard within one record of the mean.
    mean = sum(sizes) / len(chunks)
    assert all(abs(t - mean) <= biggest for t in totals)


def test_assign_splits_is_stratified_and_seeded():
    its = items([(0, 1)] * 50 + [(1, 1)] * 30 + [(2, 1)] * 10)
    out = plan.assign_splits(its, 0.2, seed=3)
    per = Counter((it.label, it.split) for it in out)
    assert per[(0, "validation")] == 10 and per[(1, "validation")] == 6
    assert per[(2, "validation")] == 2
    assert sorted(it.key for it in out) == list(range(90))
    assert out == plan.assign_splits(its, 0.2, seed=3)
    val = {it.key for it in out if it.split == "validation"}
    assert val != {
        it.key for it in plan.assign_splits(its, 0.2, seed=4) if it.split == "validation"
    }


def test_assign_splits_keeps_every_class_in_train():
    """A class of one image (or a fraction that would take all of a small class)
    keeps an image to train on."""
    its = items([(0, 1)] + [(1, 1)] * 2 + [(2, 1)] * 10)
    per = Counter((it.label, it.split) for it in plan.assign_splits(its, 0.9, seed=0))
    assert per == {
        (0, "train"): 1,
        (1, "train"): 1,
        (1, "validation"): 1,
        (2, "train"): 1,
        (2, "validation"): 9,
    }


def test_assign_splits_leaves_presplit_items():
    its = items([(0, 1)] * 4, split="test")
    assert plan.assign_splits(its, 0.5, seed=0) == its


def test_interleave_spreads_every_class():
    its = items([(0, 1)] * 60 + [(1, 1)] * 30 + [(2, 1)] * 10)
    order = plan.interleave(its, seed=0)
    assert sorted(it.key for it in order) == list(range(100))
    # Every window of 20 holds roughly the class proportions (6:3:1 scaled).
    for start in range(0, 100, 20):
        window = Counter(it.label for it in order[start : start + 20])
        assert 10 <= window[0] <= 14 and 4 <= window[1] <= 8 and 1 <= window[2] <= 3
    assert order == plan.interleave(its, seed=0)
    assert order != plan.interleave(its, seed=1)
    # Shuffled, not sorted by key within a class.
    zeros = [it.key for it in order if it.label == 0]
    assert zeros != sorted(zeros)


def test_plan_shards_names_counts_and_determinism():
    its = items([(i % 3, 10) for i in range(100)])
    shards = plan.plan_shards(its, target_bytes=250, seed=0, validation_fraction=0.1)
    by_split = Counter(s.split for s in shards)
    assert by_split == {"train": 4, "validation": 1}
    assert [s.filename("data") for s in shards if s.split == "train"] == [
        f"data-train.tfrecord-0000{i}-of-00004" for i in range(4)
    ]
    keys = [k for s in shards for k in s.keys]
    assert sorted(keys) == list(range(100))
    assert all(s.num_bytes <= 250 + 10 for s in shards)
    assert shards == plan.plan_shards(its, target_bytes=250, seed=0, validation_fraction=0.1)


@pytest.mark.parametrize(
    "index, count", [(0, 1), (99_998, 99_999), (99_999, 100_000), (123_456, 1_000_000)]
)
def test_shard_names_parse_back_past_five_digits(index, count):
    name = schema.shard_name("data", "train", index, count)
    assert schema.parse_shard_name(name) == {
        "name": "data",
        "split": "train",
        "index": index,
        "count": count,
    }


def test_a_zero_padded_alias_is_not_a_shard_name():
    assert schema.parse_shard_name("data-train.tfrecord-000001-of-000002") is None


def test_class_counts_exact():
    """Images per label id and split, a class without images counted 0; the label
    ids are the listing's, indexed by key (keys the plan does not hold are ignored)."""
    shards = [
        plan.Shard("train", 0, 2, array.array("q", [0, 2, 3]), 30),
        plan.Shard("train", 1, 2, array.array("q", [5]), 10),
        plan.Shard("validation", 0, 1, array.array("q", [1]), 10),
    ]
    label_ids = np.array([0, 1, 0, 3, 2, 3], np.intc)  # key 4 (label 2) was skipped
    assert plan.class_counts(shards, label_ids, 4) == {
        "train": (2, 0, 0, 2),
        "validation": (0, 1, 0, 0),
    }
    assert plan.class_counts([], label_ids, 4) == {}


@pytest.mark.parametrize("seed", range(5))
def test_class_counts_agree_with_the_planned_items(seed):
    import random

    rng = random.Random(seed)
    its = [
        plan.Item(key=i, label=rng.randrange(5), split=rng.choice(["train", "test"]), size=9)
        for i in range(rng.randint(1, 300))
    ]
    shards = plan.plan_shards(its, target_bytes=100, seed=seed, validation_fraction=0.2)
    labels = np.array([it.label for it in its], np.intc)
    expected: dict[str, Counter] = {}
    for sh in shards:
        expected.setdefault(sh.split, Counter()).update(int(labels[k]) for k in sh.keys)
    got = plan.class_counts(shards, labels, 5)
    assert got == {s: tuple(c[i] for i in range(5)) for s, c in expected.items()}
