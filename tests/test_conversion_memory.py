"""The converter's memory per input file stays bounded: what it keeps of each file
from the listing to the shard plan (listing, scan results, plan) is columns of a
few numbers, not objects, so millions of files fit on one machine."""

from __future__ import annotations

import hashlib
import os
import tracemalloc

import pytest

from tfclassify.conversion import converter, plan, scan, sources

FILES = 4000


def _tree(root) -> None:
    """FILES empty files in 4 classes of 10 folders each (no image is read here)."""
    for i in range(FILES):
        folder = os.path.join(root, f"class{i % 4}", f"d{i // 4 % 10:02d}")
        os.makedirs(folder, exist_ok=True)
        open(os.path.join(folder, f"img{i:07d}.jpg"), "wb").close()


def _scanned(key: int) -> scan.Scanned:
    """A plausible accepted file's scan: the fields a real one fills, of real sizes."""
    return scan.Scanned(
        key,
        format="jpeg",
        height=480 + key % 7,
        width=640,
        channels=3,
        size=150_000 + key,
        encoded_size=149_800 + key,
        sha256=hashlib.sha256(str(key).encode()).hexdigest(),
        src_size=149_800 + key,
        src_mtime_ns=1_700_000_000_000_000_000 + key,
    )


def test_listing_scan_and_plan_take_under_half_a_kilobyte_per_file(tmp_path):
    """The peak of everything the listing, the scan and the plan hold, per file: the
    converter's whole process target is 1 KB a file beyond its record cache."""
    _tree(tmp_path)
    # Once first: what the first call imports is no file's.
    plan.plan_shards([plan.Item(0, 0, "train", 1)], target_bytes=1, seed=0, validation_fraction=0.5)
    tracemalloc.start()
    try:
        start, _ = tracemalloc.get_traced_memory()
        listing = sources.list_folder(str(tmp_path))
        scans = scan.Scans()
        for key in range(len(listing)):
            scans.append(_scanned(key))
        shard_plan = plan.plan_shards(
            converter._accepted(listing, scans),
            target_bytes=64 << 20,
            seed=0,
            validation_fraction=0.1,
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(listing) == FILES
    assert sum(len(sh.keys) for sh in shard_plan) == FILES
    # A few arrays' worth of numbers a file (see benchmarks/NOTES.md); one object
    # per file would take several hundred bytes on its own.
    assert (peak - start) / FILES < 512


def test_scans_give_back_every_field_and_replacements():
    scans = scan.Scans()
    lines = [
        _scanned(0),
        scan.Scanned(1, skip="too_large: 9 bytes > max_file_mb (8 bytes)"),
        scan.Scanned(2, format="png", height=3, width=4, channels=1, size=90, converted="rgba"),
    ]
    for line in lines:
        scans.append(line)
    assert [scans[k] for k in range(3)] == lines
    assert scans.skipped() == [(1, lines[1].skip)]
    assert scans.accepted().tolist() == [0, 2]
    assert scans.sizes().tolist() == [lines[0].size, 0, 90]
    # A late decode check turns an accepted file into a skipped one, and back.
    scans[0] = scan.Scanned(0, skip="undecodable: decode failed")
    assert scans.accepted().tolist() == [2] and scans[0].sha256 == ""
    scans[0] = lines[0]
    assert scans[0] == lines[0] and scans.accepted().tolist() == [0, 2]


@pytest.mark.parametrize(
    "bad",
    [
        scan.Scanned(0, sha256="ABCD" * 16),  # not what hexdigest gives
        scan.Scanned(0, sha256="00"),
        scan.Scanned(0, size=2**63),
        scan.Scanned(1),  # not the next key
    ],
)
def test_scans_refuse_what_they_cannot_hold_and_stay_unchanged(bad):
    """A damaged journal line ends the journal's valid part; nothing of it is kept."""
    scans = scan.Scans()
    with pytest.raises((ValueError, OverflowError)):
        scans.append(bad)
    assert len(scans) == 0
    scans.append(_scanned(0))
    assert scans[0] == _scanned(0)
