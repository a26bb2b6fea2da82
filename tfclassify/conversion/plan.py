"""Pure shard planning: accepted records → splits → ordered, size-balanced shards.

No I/O and no TF, so the plan is a function of (records, seed, target) only and
is identical in a local pool, on resume and inside Beam. String-seeded
`random.Random` is stable across processes and Python versions (it hashes the
seed string with SHA-512), unlike `hash()`.
"""

from __future__ import annotations

import array
import dataclasses
import math
import random
from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from tfclassify.core import schema

VALIDATION = "validation"


@dataclasses.dataclass(frozen=True)
class Item:
    """One accepted record: `key` indexes the listing, `size` is its bytes in a shard."""

    key: int
    label: int
    split: str
    size: int


@dataclasses.dataclass(frozen=True, eq=False)
class Records:
    """Accepted records as columns, one row per record: what `plan_shards` plans.

    A plan of millions of records takes its inputs as arrays (about 30 bytes a
    record), not as an `Item` object each (a few hundred).
    """

    keys: np.ndarray  # int64: listing keys, unique
    labels: np.ndarray  # int64
    splits: np.ndarray  # int64: positions in `split_names`
    split_names: tuple[str, ...]
    sizes: np.ndarray  # int64: bytes in a shard

    def __post_init__(self) -> None:
        for name in ("keys", "labels", "splits", "sizes"):
            object.__setattr__(self, name, np.asarray(getattr(self, name), np.int64))

    @classmethod
    def of(cls, items: Iterable[Item]) -> Records:
        items = list(items)
        names = sorted({it.split for it in items})
        code = {split: i for i, split in enumerate(names)}
        return cls(
            keys=np.array([it.key for it in items], np.int64),
            labels=np.array([it.label for it in items], np.int64),
            splits=np.array([code[it.split] for it in items], np.int64),
            split_names=tuple(names),
            sizes=np.array([it.size for it in items], np.int64),
        )

    def __len__(self) -> int:
        return len(self.keys)


@dataclasses.dataclass(frozen=True)
class Shard:
    split: str
    index: int
    count: int
    keys: Sequence[int]  # array('q'): 8 bytes a record
    num_bytes: int

    def filename(self, name: str) -> str:
        return schema.shard_name(name, self.split, self.index, self.count)


def _by_label(keys: np.ndarray, labels: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """(label, positions of its records sorted by key) for each label, ascending."""
    order = np.lexsort((keys, labels))
    for group in np.split(order, np.flatnonzero(np.diff(labels[order])) + 1):
        if len(group):
            yield int(labels[group[0]]), group


def _shuffled(positions: np.ndarray, rng: random.Random) -> np.ndarray:
    """`positions` in the order `rng.shuffle` puts a list of them in (its swaps
    depend only on the length), shuffled as 8-byte numbers, not a list of ints."""
    shuffled = array.array("q", positions.astype(np.int64).tobytes())
    rng.shuffle(shuffled)
    return np.frombuffer(shuffled, np.int64)


def _to_validation(records: Records, validation_fraction: float, seed: int) -> np.ndarray:
    """Which records `assign_splits` moves to validation (a bool per record)."""
    moved = np.zeros(len(records), bool)
    if validation_fraction <= 0 or "train" not in records.split_names:
        return moved
    train = np.flatnonzero(records.splits == records.split_names.index("train"))
    for label, group in _by_label(records.keys[train], records.labels[train]):
        group = _shuffled(group, random.Random(f"{seed}/validation/{label}"))
        n_val = min(round(len(group) * validation_fraction), len(group) - 1)
        moved[train[group[:n_val]]] = True
    return moved


def assign_splits(items: Sequence[Item], validation_fraction: float, seed: int) -> list[Item]:
    """Moves round(n * fraction) of each class of `train` to `validation` (stratified),
    keeping at least one image of every class in `train`: a class the model never
    trains on cannot be learned, whatever its validation score says. Items keep
    their order."""
    moved = _to_validation(Records.of(items), validation_fraction, seed)
    return [
        dataclasses.replace(it, split=VALIDATION) if m else it
        for it, m in zip(items, moved.tolist(), strict=True)
    ]


def _interleaved(keys: np.ndarray, labels: np.ndarray, seed: int, salt: str) -> np.ndarray:
    """The positions of the records (`keys`, `labels`) in `interleave`'s order."""
    groups, places = [np.zeros(0, np.int64)], [np.zeros(0)]
    for label, group in _by_label(keys, labels):
        rng = random.Random(f"{seed}/order/{salt}/{label}")
        groups.append(_shuffled(group, rng))
        n = len(group)
        places.append((np.arange(n) + np.fromiter((rng.random() for _ in range(n)), float, n)) / n)
    order = np.concatenate(groups)
    return order[np.lexsort((keys[order], labels[order], np.concatenate(places)))]


def interleave(items: Sequence[Item], seed: int, salt: str = "") -> list[Item]:
    """Shuffled order in which every class is spread evenly over the whole sequence.

    Item i of a class of n gets the position key (i + u) / n, u ~ U[0, 1): each
    class is stratified along the sequence (every shard, and every window of a
    reader, sees the class mix) while the order stays random. Ties go to the lower
    label, then the lower key.
    """
    records = Records.of(items)
    return [items[i] for i in _interleaved(records.keys, records.labels, seed, salt).tolist()]


def cut(sizes: Sequence[int], target: int) -> list[tuple[int, int]]:
    """Contiguous [start, end) chunks of balanced total size, each ≤ target + one record.

    Uses n = ceil(total / target) chunks and cuts where the running total first
    reaches k·total/n, so every chunk holds < total/n + max(size) ≤ target + one record.
    """
    if not sizes:
        return []
    total = sum(sizes)
    n = max(1, math.ceil(total / target))
    bounds = [0]
    running = 0
    k = 1
    for i, s in enumerate(sizes):
        running += s
        # Cut after record i once the running total reaches the k-th boundary.
        while k < n and running >= k * total / n:
            if bounds[-1] != i + 1:
                bounds.append(i + 1)
            k += 1
    if bounds[-1] != len(sizes):
        bounds.append(len(sizes))
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def plan_shards(
    items: Sequence[Item] | Records,
    *,
    target_bytes: int,
    seed: int,
    validation_fraction: float = 0.0,
) -> list[Shard]:
    """The whole plan: splits, order and shard boundaries. Deterministic in its inputs."""
    records = items if isinstance(items, Records) else Records.of(items)
    names = list(records.split_names)
    splits = records.splits
    moved = _to_validation(records, validation_fraction, seed)
    if moved.any():
        if VALIDATION not in names:
            names.append(VALIDATION)
        splits = np.where(moved, names.index(VALIDATION), splits)
    shards = []
    for split in sorted(names[code] for code in np.unique(splits).tolist()):
        members = np.flatnonzero(splits == names.index(split))
        ordered = members[
            _interleaved(records.keys[members], records.labels[members], seed, salt=split)
        ]
        keys, sizes = (
            array.array("q", column[ordered].tobytes()) for column in (records.keys, records.sizes)
        )
        chunks = cut(sizes, target_bytes)
        for index, (a, b) in enumerate(chunks):
            shards.append(
                Shard(
                    split=split,
                    index=index,
                    count=len(chunks),
                    keys=keys[a:b],
                    num_bytes=sum(sizes[a:b]),
                )
            )
    return shards


def class_counts(
    shards: Sequence[Shard], label_ids: np.ndarray, num_classes: int
) -> dict[str, tuple[int, ...]]:
    """Images per label id in each split of a plan: what dataset.json records.

    Args:
      shards: the plan (`plan_shards`).
      label_ids: every listing key's label id (the listing's `label_ids()`), >= 0 for
        each key the plan holds.
      num_classes: the label map's size; a class without images counts 0.

    Returns:
      {split: counts by label id}, one entry per split that has shards.
    """
    label_ids = np.asarray(label_ids)
    counts: dict[str, np.ndarray] = {}
    for sh in shards:
        # One bincount per shard: no copy of a whole split's keys.
        labels = label_ids[np.asarray(sh.keys, np.int64)]
        found = np.bincount(labels, minlength=num_classes)
        counts[sh.split] = counts.get(sh.split, 0) + found
    return {split: tuple(c.tolist()) for split, c in counts.items()}
