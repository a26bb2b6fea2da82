"""Pure shard planning: accepted records → splits → ordered, size-balanced shards.

No I/O and no TF, so the plan is a function of (records, seed, target) only and
is identical in a local pool, on resume and inside Beam. String-seeded
`random.Random` is stable across processes and Python versions (it hashes the
seed string with SHA-512), unlike `hash()`.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections import defaultdict
from collections.abc import Sequence

from tfclassify.core import schema

VALIDATION = "validation"


@dataclasses.dataclass(frozen=True)
class Item:
    """One accepted record: `key` indexes the listing, `size` is its bytes in a shard."""

    key: int
    label: int
    split: str
    size: int


@dataclasses.dataclass(frozen=True)
class Shard:
    split: str
    index: int
    count: int
    keys: tuple[int, ...]
    num_bytes: int

    def filename(self, name: str) -> str:
        return schema.shard_name(name, self.split, self.index, self.count)


def assign_splits(items: Sequence[Item], validation_fraction: float, seed: int) -> list[Item]:
    """Moves round(n * fraction) of each class of `train` to `validation` (stratified),
    keeping at least one image of every class in `train`: a class the model never
    trains on cannot be learned, whatever its validation score says."""
    if validation_fraction <= 0:
        return list(items)
    by_class: dict[int, list[Item]] = defaultdict(list)
    out = []
    for it in items:
        (by_class[it.label] if it.split == "train" else out).append(it)
    for label in sorted(by_class):
        group = sorted(by_class[label], key=lambda it: it.key)
        random.Random(f"{seed}/validation/{label}").shuffle(group)
        n_val = min(round(len(group) * validation_fraction), len(group) - 1)
        out.extend(dataclasses.replace(it, split=VALIDATION) for it in group[:n_val])
        out.extend(group[n_val:])
    return out


def interleave(items: Sequence[Item], seed: int, salt: str = "") -> list[Item]:
    """Shuffled order in which every class is spread evenly over the whole sequence.

    Item i of a class of n gets the position key (i + u) / n, u ~ U[0, 1): each
    class is stratified along the sequence (every shard, and every window of a
    reader, sees the class mix) while the order stays random.
    """
    by_class: dict[int, list[Item]] = defaultdict(list)
    for it in items:
        by_class[it.label].append(it)
    keyed = []
    for label in sorted(by_class):
        group = sorted(by_class[label], key=lambda it: it.key)
        rng = random.Random(f"{seed}/order/{salt}/{label}")
        rng.shuffle(group)
        n = len(group)
        keyed.extend(((i + rng.random()) / n, label, it.key, it) for i, it in enumerate(group))
    keyed.sort(key=lambda t: t[:3])
    return [t[3] for t in keyed]


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
    items: Sequence[Item], *, target_bytes: int, seed: int, validation_fraction: float = 0.0
) -> list[Shard]:
    """The whole plan: splits, order and shard boundaries. Deterministic in its inputs."""
    by_split: dict[str, list[Item]] = defaultdict(list)
    for it in assign_splits(items, validation_fraction, seed):
        by_split[it.split].append(it)
    shards = []
    for split in sorted(by_split):
        ordered = interleave(by_split[split], seed, salt=split)
        chunks = cut([it.size for it in ordered], target_bytes)
        for index, (a, b) in enumerate(chunks):
            part = ordered[a:b]
            shards.append(
                Shard(
                    split=split,
                    index=index,
                    count=len(chunks),
                    keys=tuple(it.key for it in part),
                    num_bytes=sum(it.size for it in part),
                )
            )
    return shards
