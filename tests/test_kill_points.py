"""Kill and resume: the converter killed at any point leaves only complete files under
final names, and `--resume` then gives the bytes a clean run gives.

Each case runs the converter's command line through `killhook.py`, which wraps one
function so that the process signals itself at the Nth matching call (deterministic
with one worker; no hook in the product). After the kill: the point was reached,
every file under a final name (shards, their indexes, labels.txt, skipped.csv, the
TFDS files, dataset.json) equals the clean run's, a plain rerun is refused, and a
resume (chained kills: several) gives a byte-identical dataset; shards recorded as
done were kept, not rewritten.
test_convert.py::test_kill_and_resume kills at two points found by polling instead.
"""

from __future__ import annotations

import dataclasses
import filecmp
import json
import os
import shutil
import signal
import subprocess
import sys

import pytest
from recordlib import assert_same_output

from tfclassify import convert, testing
from tfclassify.conversion.converter import WORK_DIR
from tfclassify.core import fileio, interop, metadata, schema
from tfclassify.core.errors import OutputError
from tfclassify.core.options import ConvertOptions
from tfclassify.verify import verify

HOOK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "killhook.py")
WORK = WORK_DIR
REPORTS = (metadata.METADATA_FILE, metadata.LABELS_FILE, metadata.SKIPPED_FILE, *interop.TFDS_FILES)
SHARD_MB = 0.02


@dataclasses.dataclass(frozen=True)
class Kill:
    """One kill point: see killhook.py for the fields."""

    targets: tuple[str, ...]
    at: str
    nth: int = 1
    match: str | None = None
    items: int = 0
    signal: str = "SIGKILL"

    def spec(self, mark: str) -> dict:
        return {**dataclasses.asdict(self), "targets": list(self.targets), "mark": mark}


ATOMIC = ("tfclassify.core.fileio:atomic_path",)
DONE = ("tfclassify.conversion.shards:mark_done",)
REMOVE = ("os:remove", "os:unlink")
ORDERED = ("tfclassify.conversion.scan:ordered",)


def shard(n: int | str) -> str:
    """Pattern of the n-th shard written (1-based; "last"), resolved per corpus."""
    return f"@shard:{n}"


def index(n: int | str) -> str:
    """Pattern of the n-th shard's index file, resolved per corpus."""
    return f"@shard:{n}{schema.INDEX_SUFFIX}"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict:
    """Photos in 3 classes plus every hostile kind (converted ones use the scan cache,
    unreadable ones go to skipped.csv), and its clean conversion: 13 train and 3
    validation shards."""
    root = tmp_path_factory.mktemp("kill")
    inp = root / "in"
    testing.make_class_tree(inp, per_class=10, seed=9, min_side=40, max_side=120)
    testing.make_hostile_files(inp / "odd")
    clean = convert(options(str(inp), str(root / "clean")))
    order = [s.file for split in clean.splits.values() for s in split.shards]
    assert len(order) >= 8 and clean.skipped > 0
    return {"input": str(inp), "clean": clean.directory, "order": order}


def options(inp: str, out: str, **kw) -> ConvertOptions:
    kw = {"shard_size_mb": SHARD_MB, "num_workers": 1, "validation_fraction": 0.2, **kw}
    return ConvertOptions(input_dir=inp, output_dir=out, quiet=True, **kw)


def resolve(kill: Kill, order: list[str]) -> Kill:
    """`shard(n)` patterns -> the file name of the n-th shard of the clean run's plan."""
    if kill.match and kill.match.startswith("@shard:"):
        n, dot, suffix = kill.match.split(":")[1].partition(".")
        name = order[-1] if n == "last" else order[int(n) - 1]
        return dataclasses.replace(kill, match=name + dot + suffix)
    return kill


def run_killed(corpus: dict, out: str, kill: Kill, *flags: str) -> None:
    """Runs the converter's command line until `kill` fires; checks that it did."""
    mark = out + ".mark"
    if os.path.exists(mark):
        os.remove(mark)
    cmd = [sys.executable, HOOK, "--input_dir", corpus["input"], "--output_dir", out]
    cmd += ["--shard_size_mb", str(SHARD_MB), "--validation_fraction", "0.2", "--quiet"]
    cmd += ["--num_workers", "1", *flags]
    spec = resolve(kill, corpus["order"]).spec(mark)
    env = {**os.environ, "TFCLASSIFY_KILL_AT": json.dumps(spec)}
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert os.path.exists(mark), f"kill point not reached (rc {p.returncode}): {p.stderr[-2000:]}"
    if kill.signal == "SIGINT":  # Ctrl-C: one line, the shell's status for it
        assert (p.returncode, p.stderr.strip().splitlines()[-1:]) == (130, ["error: interrupted"])
        assert "Traceback" not in p.stderr
    else:
        assert p.returncode == -getattr(signal, kill.signal), p.stderr[-2000:]


def done_records(out: str) -> set[str]:
    done = os.path.join(out, WORK, "done")
    return {f.removesuffix(".json") for f in os.listdir(done)} if os.path.isdir(done) else set()


def final_files(out: str) -> list[str]:
    """The files under final names in `out` (relative paths), its index folder's too."""
    found = []
    for entry in os.listdir(out):
        if entry == WORK or entry.startswith(fileio.TMP_PREFIX):
            continue  # tfclassify's own work in progress, never read as output
        if entry == schema.INDEX_DIR:
            found += [f"{entry}/{name}" for name in final_files(os.path.join(out, entry))]
        else:
            found.append(entry)
    return found


def check_killed(corpus: dict, out: str) -> dict[str, os.stat_result]:
    """Every file under a final name is complete; returns the shards recorded as done."""
    clean = corpus["clean"]
    for entry in final_files(out):
        folder, _, name = entry.rpartition("/")
        assert (
            schema.indexed_shard(name)
            if folder
            else entry in REPORTS or schema.parse_shard_name(entry)
        ), entry
        assert filecmp.cmp(os.path.join(out, entry), os.path.join(clean, entry), shallow=False), (
            f"{entry} is at its final name but differs from the clean run's"
        )
    if not os.path.exists(os.path.join(out, metadata.METADATA_FILE)) and os.listdir(out):
        with pytest.raises(OutputError, match="resume=True"):  # not taken for finished
            convert(options(corpus["input"], out))
    # A shard's done record is written just before its rename: kept are those renamed.
    return {
        f: os.stat(os.path.join(out, f))
        for f in done_records(out)
        if schema.parse_shard_name(f) and os.path.exists(os.path.join(out, f))
    }


def check_resumed(corpus: dict, out: str, kept: dict[str, os.stat_result], **kw) -> None:
    convert(options(corpus["input"], out, resume=True, **kw))
    assert_same_output(corpus["clean"], out)
    for f, before in kept.items():  # recorded as done: kept, not written again
        after = os.stat(os.path.join(out, f))
        assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns), f
    verify(out)


def kill_and_resume(corpus: dict, out: str, kills: list[Kill], **kw) -> None:
    """Kills a conversion, then each resume but the last, at the given points."""
    for i, kill in enumerate(kills):
        run_killed(corpus, out, kill, *(["--resume"] if i else []))
        kept = check_killed(corpus, out)
    check_resumed(corpus, out, kept, **kw)


# The default suite's four: a shard recorded done but not yet renamed, a shard's index
# renamed but not the shard, a shard just renamed, and the last file of all
# (dataset.json) half-way.
FAST = {
    "shard 2 done, not yet renamed": Kill(DONE, "after", nth=2),
    "shard 2 index renamed, shard not yet": Kill(ATOMIC, "exit", match=index(2)),
    "shard 1 renamed": Kill(ATOMIC, "exit", match=shard(1)),
    "dataset.json temp": Kill(ATOMIC, "inside", match=metadata.METADATA_FILE),
}
SLOW = {
    "state.json written": Kill(ATOMIC, "exit", match="state.json"),
    "journal written": Kill(("tfclassify.conversion.scan:_Journal.append",), "after"),
    "scan cache temp open": Kill(ATOMIC, "inside", match="*.bin"),
    "scan cache written": Kill(ATOMIC, "exit", nth=3, match="*.bin"),
    "scan done, before the plan": Kill(("tfclassify.conversion.plan:plan_shards",), "before"),
    "temp shard open": Kill(ATOMIC, "inside", match=shard(1)),
    "temp index open": Kill(ATOMIC, "inside", match=index(3)),
    "last index renamed": Kill(ATOMIC, "exit", match=index("last")),
    "features.json temp": Kill(ATOMIC, "inside", match=interop.TFDS_FEATURES_FILE),
    # Call 1 of scan.ordered is the scan's; each shard written makes one more.
    "mid-shard, 2 records in the writer": Kill(ORDERED, "yield", nth=3, items=2),
    "shard 1 done, not yet renamed": Kill(DONE, "after", nth=1),
    "shard 3 renamed": Kill(ATOMIC, "exit", match=shard(3)),
    "shard 3 done, not yet renamed": Kill(DONE, "after", nth=3),
    "shard 5 done, not yet renamed": Kill(DONE, "after", nth=5),
    "last shard renamed": Kill(ATOMIC, "exit", match=shard("last")),
    "last shard done, not yet renamed": Kill(DONE, "after", match=shard("last")),
    "labels.txt temp": Kill(ATOMIC, "inside", match=metadata.LABELS_FILE),
    "skipped.csv temp": Kill(ATOMIC, "inside", match=metadata.SKIPPED_FILE),
    "dataset.json written, work dir left": Kill(ATOMIC, "exit", match=metadata.METADATA_FILE),
    "SIGTERM mid-shard": Kill(ORDERED, "yield", nth=4, items=1, signal="SIGTERM"),
}


@pytest.mark.parametrize("kill", FAST.values(), ids=FAST.keys())
def test_kill_and_resume_point(tmp_path, corpus, kill):
    kill_and_resume(corpus, str(tmp_path / "out"), [kill])


# Killed while the finished run removes its work dir: dataset.json is complete, so
# --resume must finish from it, not from the half-removed work dir (its scan cache
# is already gone).
HALF_REMOVED = pytest.param(
    Kill(REMOVE, "before", nth=3, match="*.tfrecord-*.json"),
    id="work dir half removed",
)


@pytest.mark.slow
@pytest.mark.parametrize(
    "kill", [*SLOW.values(), HALF_REMOVED], ids=[*SLOW.keys(), "work dir half removed"]
)
def test_kill_and_resume_point_slow(tmp_path, corpus, kill):
    kill_and_resume(corpus, str(tmp_path / "out"), [kill])


@pytest.mark.slow
@pytest.mark.parametrize(
    "kills",
    [
        [Kill(DONE, "after", nth=2), Kill(DONE, "after", nth=2)],
        # The journal is written at the end of this small scan: the resume scans again.
        [
            Kill(ATOMIC, "exit", nth=2, match="*.bin"),
            Kill(ATOMIC, "exit", nth=5, match="*.bin"),
            Kill(DONE, "after", nth=1),
        ],
        # A resume killed while it checks the shards already done.
        [
            Kill(DONE, "after", nth=3),
            Kill(("tfclassify.conversion.shards:load_done",), "before", nth=2),
        ],
    ],
    ids=["mid-write twice", "scan twice, then write", "while checking done shards"],
)
def test_chained_kills(tmp_path, corpus, kills):
    kill_and_resume(corpus, str(tmp_path / "out"), kills)


@pytest.mark.slow
def test_sigint_removes_the_temporary_shard(tmp_path, corpus):
    """Ctrl-C: Python unwinds, so the open temporary shard is removed, not left behind."""
    out = str(tmp_path / "out")
    run_killed(corpus, out, Kill(ATOMIC, "inside", match=shard(2), signal="SIGINT"))
    assert not [f for f in os.listdir(out) if f.startswith(fileio.TMP_PREFIX)]
    check_resumed(corpus, out, check_killed(corpus, out))


@pytest.mark.slow
def test_kill_with_several_workers(tmp_path, corpus):
    """Threads write nothing out of order: the same bytes as one worker's clean run."""
    out = str(tmp_path / "out")
    run_killed(corpus, out, Kill(DONE, "after", nth=3), "--num_workers", "4")
    check_resumed(corpus, out, check_killed(corpus, out), num_workers=4)


@pytest.mark.slow
def test_kill_during_overwrite_deletion(tmp_path, corpus):
    """--overwrite killed while deleting the previous conversion: the user's file is
    still there, and a resume (or, refused, an --overwrite) completes the dataset."""
    out = tmp_path / "out"
    shutil.copytree(corpus["clean"], out)
    (out / "notes.txt").write_text("mine")
    kill = Kill(REMOVE, "before", nth=2, match="*.tfrecord-?????-of-?????")
    run_killed(corpus, str(out), kill, "--overwrite")
    assert (out / "notes.txt").read_text() == "mine"
    (out / "notes.txt").unlink()
    kept = check_killed(corpus, str(out))
    try:
        check_resumed(corpus, str(out), kept)
    except OutputError as e:  # the one-line refusal points at overwrite
        assert "overwrite=True" in str(e) and "\n" not in str(e)
        convert(options(corpus["input"], str(out), overwrite=True))
        check_resumed(corpus, str(out), {})
