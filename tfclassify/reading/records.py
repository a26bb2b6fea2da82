"""The exact reader: every bad record named by shard and position, skipped or raised.

`make_dataset` takes this path for `skip_errors=True`, and for shards whose record
counts no dataset.json gives; otherwise its plain pipeline (`dataset._fast_dataset`)
is several times cheaper and still fails loudly.

Every bad record is reported with its shard path and its index in that shard. It is
never dropped silently. There are two kinds:

1. Framing: a TFRecord CRC mismatch or a truncated file. TF's reader raises
   `DataLossError("corrupted record at <byte>")`, which does not name the file, and
   gives up on the rest of that file (`ignore_errors` cannot resume it). `_read_shard`
   lets the reader stop and notes how many bytes it framed (each record takes
   len + 16). If that falls short of the file size, `_walk` takes over at that
   offset. That record is the bad one; then the length headers lead on to the rest of
   the file. It reads them with `FixedLengthRecordDataset`, the one tf.data reader
   that starts at a byte offset. Each length header's CRC is checked in graph.
   The data CRC of the records found this way is not (TF has no CRC32C kernel for
   arbitrary bytes), but they still have to parse and decode. A length header that
   fails its CRC leaves the rest of the shard unframeable: one bad record, and the
   bytes are counted in `ReadStats.lost_bytes`.
2. Content: a framed record whose Example does not parse or whose image does not
   decode. Decode errors cannot be caught inside a graph function, so the decode map
   is followed by `ignore_errors()`. Before it, records are numbered, and each carries
   the identity of the `_WINDOW` records before it. After it, a scan finds the missing
   numbers, and the next record through names them. The map keeps its order for this
   (deterministic=True). An error that is not a record's, such as a read error, takes
   a number but never reaches the window. It is told apart that way and always
   raises: `ignore_errors` cannot swallow it.

A shard can also lose or gain whole records with no bad one to show for it
(emptied, cut at a record boundary, a record dropped or written twice). When
dataset.json gives the shard's count, skip mode compares the records framed with it
where the shard ends (`_check_count`): after TF's reader if it got to the end of the
file, else after the walk. That runs only for a shard read to its end, so a consumer
that stops early hears of no shortfall it did not reach.

By default (`skip_errors=False`) the first bad record raises
`tf.errors.InvalidArgumentError` ("tfclassify: bad record <i> of <shard>: <reason>").
TF logs the underlying error as a warning just before. With `skip_errors=True` each
bad record is logged to stderr with the same text, counted in `ReadStats` and named
there (`ReadStats.bad_records`: shard, index, reason), and reading goes on.

Cost: the bookkeeping adds a handful of per-record steps (a scan with a table insert,
enumerate, a window scan, ignore_errors, a gap scan, a filter) to a bare
read -> map -> batch pipeline, each paying tf.data's fixed cost per step and per op
(figures: benchmarks/NOTES.md). So for a converted dataset in strict mode (record counts
known from dataset.json), `make_dataset` takes `_fast_dataset` instead: a plain
pipeline that checks the counts per shard at the end.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import tensorflow as tf

from tfclassify.core import schema
from tfclassify.core.cpus import available_cpus
from tfclassify.core.options import ReadOptions
from tfclassify.core.tfdata import parallel, plain
from tfclassify.reading import preprocess

__all__ = ["BadRecord", "ReadStats", "buffer_size", "exact_dataset", "opened", "tfrecords"]

# TFRecordDataset's read buffer when none is given (its kernel's kDefaultBufferSize).
TF_RECORD_BUFFER_BYTES = 256 * 1024
_LENGTH_HEADER = 12  # TFRecord: uint64 length + uint32 masked CRC32C of the length

# Status of a record, set by the shard reader; anything >= _BAD_DATA is a framing error.
_OK, _FINAL, _BAD_DATA, _TRUNCATED, _BAD_HEADER = range(5)
_WALK_DONE = -1
_ZEROS = b"\x00" * 12
_STATUS_TEXT = (
    "could not parse or decode it (the TF error is logged above)",
    "end of data",
    "the TFRecord reader rejected it, usually a data CRC mismatch (the TF error is logged above)",
    "truncated TFRecord: the file ends inside this record",
    "corrupt TFRecord length header: the rest of the shard cannot be framed",
)
# How many preceding records each record can name; a longer run of failures is counted
# but only its last _WINDOW records are named.
_WINDOW = 16
# Bad records a `ReadStats` keeps by name; beyond that it only counts them (each one
# kept costs its shard path in memory).
MAX_NAMED = 10_000
# tf.train.Example with a 1x1 PNG: the final marker, which must decode.
_FINAL_RECORD = bytes.fromhex(
    "0a5a0a580a0d696d6167652f656e636f64656412470a450a4389504e470d0a1a0a0000000d494844"
    "52000000010000000108000000003a7e9b550000000a49444154789c636000000002000148afa471"
    "0000000049454e44ae426082"
)


# ---------------------------------------------------------------- public helpers


class BadRecord(NamedTuple):
    """A record the exact path skipped: its shard, its index there, and why."""

    shard: str
    index: int
    reason: str


class ReadStats:
    """Counts of the records a `make_dataset` pipeline could not deliver as listed.

    The counters are tf.Variables updated inside the pipeline. They only grow when
    `skip_errors=True` (otherwise the first bad record raises). They are exact once
    the dataset is exhausted. Before that they may include records read ahead
    (prefetch) that the caller has not seen yet. Iterating again adds to them; call
    `reset()` between passes to count one pass.

    For shards listed in a dataset.json, a full pass accounts for every record:
    records delivered + `skipped` - `extra` = the records dataset.json lists.
    """

    def __init__(self) -> None:
        # On the host: the pipeline runs there, even when a GPU is present.
        with tf.device("/CPU:0"):
            self._skipped = tf.Variable(0, dtype=tf.int64, trainable=False)
            self._lost_bytes = tf.Variable(0, dtype=tf.int64, trainable=False)
            self._extra = tf.Variable(0, dtype=tf.int64, trainable=False)
            # The named bad records, as three columns that grow (shape [None]).
            self._named = tuple(
                tf.Variable(tf.zeros([0], dtype), shape=[None], trainable=False)
                for dtype in (tf.string, tf.int64, tf.string)
            )

    @property
    def skipped(self) -> int:
        """Records skipped: each bad record (an unframeable shard tail counts as one),
        and, for a shard dataset.json lists, the records it lists beyond those the
        shard holds (emptied, cut, a record dropped)."""
        return int(self._skipped.numpy())

    @property
    def extra(self) -> int:
        """Records a shard holds beyond dataset.json's count for it (a record written
        twice): delivered, since which one is extra cannot be told."""
        return int(self._extra.numpy())

    @property
    def lost_bytes(self) -> int:
        """Bytes after a corrupt length header, which could not be split into records."""
        return int(self._lost_bytes.numpy())

    @property
    def bad_records(self) -> list[BadRecord]:
        """The bad records named so far (the first `MAX_NAMED`), in the order read.

        `skipped` may count more: a run of bad records longer than the reader's window
        is named only in part, and the records missing from a shard that holds fewer
        than dataset.json lists have no index to name."""
        shards, indices, reasons = (v.numpy() for v in self._named)
        return [
            BadRecord(s.decode("utf-8", "surrogateescape"), int(i), r.decode("utf-8"))
            for s, i, r in zip(shards, indices, reasons, strict=True)
        ]

    def reset(self) -> None:
        self._skipped.assign(0)
        self._lost_bytes.assign(0)
        self._extra.assign(0)
        for column in self._named:
            column.assign(column[:0])

    def _name(self, shards: tf.Tensor, indices: tf.Tensor, reasons: tf.Tensor) -> list[Any]:
        """Ops that append bad records to the named ones, up to `MAX_NAMED`."""
        return [
            column.assign(tf.concat([column, new], 0)[:MAX_NAMED])
            for column, new in zip(self._named, (shards, indices, reasons), strict=True)
        ]

    def as_dict(self) -> dict[str, int]:
        return {"skipped": self.skipped, "lost_bytes": self.lost_bytes, "extra": self.extra}

    def __repr__(self) -> str:
        return "ReadStats({})".format(", ".join(f"{k}={v}" for k, v in self.as_dict().items()))


def interleave_shards(
    shards: tuple[Any, ...],
    read: Callable[..., tf.data.Dataset],
    options: ReadOptions,
    grouped: bool = False,
) -> tf.data.Dataset:
    """Both read paths' start: shards -> [shuffle] -> interleave(read) -> [shuffle records].

    Args:
      shards: per-shard values for `from_tensor_slices`, the paths first.
      read: one shard's values -> its records; with `grouped`, groups of
        `block_length` x k records, unbatched here (a group is then one block).
      options: the shuffles' and interleave's settings.
    """
    n = len(shards[0])
    ds = tf.data.Dataset.from_tensor_slices(shards)
    if options.shuffle_files:
        # The whole shard list fits in the buffer: a full, nearly free shuffle, which
        # the record buffer below then refines.
        ds = ds.shuffle(n, seed=options.seed, reshuffle_each_iteration=True)
    # Read several shards at once to overlap file latency and mix shards. Capped at the
    # shard count and the CPUs: each open shard holds a read buffer, and interleave
    # opens 2 x cycle_length more ahead.
    ds = ds.interleave(
        plain(read),
        cycle_length=min(n, options.cycle_length or available_cpus()),
        block_length=1 if grouped else options.block_length,
        **parallel(options.interleave_parallelism, options.deterministic),
    )
    if grouped:
        ds = ds.unbatch()
    if options.shuffle_buffer:
        # Shuffle serialized records, before decoding: a buffer of encoded bytes is many
        # times smaller than the same buffer of decoded images.
        ds = ds.shuffle(options.shuffle_buffer, seed=options.seed, reshuffle_each_iteration=True)
    return ds


def exact_dataset(
    paths: Sequence[str],
    options: ReadOptions,
    stats: ReadStats,
    counts: Sequence[int] | None = None,
) -> tf.data.Dataset:
    """Batches of {"image", "label", "key"} with every bad record accounted for in
    `stats` (or raised); without the final prefetch and options, which `make_dataset`
    adds to both paths.

    `counts` (skip_errors only): the records each shard should hold, -1 if unknown.
    When a shard has been read to its end, a shortfall is added to `stats.skipped`
    and an excess to `stats.extra`, each logged naming the shard.
    """
    sizes = [tf.io.gfile.stat(p).length for p in paths]
    reader = functools.partial(
        _read_shard,
        buffer_bytes=options.reader_buffer_kb * 1024,
        progress=_Progress(),
        stats=None if counts is None else stats,
    )
    expected = [-1] * len(paths) if counts is None else list(counts)
    # Shard paths with their sizes: the reader checks it read each file to its end.
    shards = (paths, tf.constant(sizes, tf.int64), tf.constant(expected, tf.int64))
    ds = interleave_shards(shards, reader, options)
    # A marker after the last record, so a failure at the very end still leaves a gap.
    ds = ds.concatenate(tf.data.Dataset.from_tensors(_final_marker()))
    # Number the records before decoding: a number that does not come out of the decode
    # step is a record that failed there (or, upstream, an error that is not a record's).
    ds = ds.enumerate()
    # Each record carries the identity of the _WINDOW records before it, so the next
    # record to come through can name the ones that did not.
    ds = ds.scan(_empty_window(), plain(_remember))
    # Parse, decode, resize, normalize: per image, in parallel. Per record
    # (parse_single_example), not batched, so a malformed Example fails alone; parsing
    # is cheap next to a decode. In order (deterministic=True), whatever `deterministic`
    # says: the gap check below relies on it.
    ds = ds.map(
        plain(functools.partial(_decode_record, options=options)),
        **parallel(options.map_parallelism, True),
    )
    # Decode errors cannot be caught inside a graph function: drop the failed element
    # here (TF logs its error), and account for it just below.
    ds = ds.ignore_errors(log_warning=True)
    # Find the gaps in the numbering: name, count and log (or raise on) bad records.
    ds = ds.scan(
        (tf.constant(-1, tf.int64), tf.constant(0, tf.int64)),
        plain(functools.partial(_account, options=options, stats=stats)),
    )
    ds = ds.filter(plain(lambda element, keep: keep))
    # Batch after the per-image work: every image now has the same static shape.
    ds = ds.batch(options.batch_size, drop_remainder=options.drop_remainder)
    # Once per batch: drop the `keep` flag, transpose to NCHW when asked.
    return ds.map(plain(lambda out, keep: preprocess.finish_batch(out, options)))


class _Progress:
    """Where each open shard's reader got to: (byte offset, record count) by token.

    The tail of a shard's dataset (`_walk`) starts only after TF's reader ends, and
    must know how far it got. Passing that through a table costs one insert per record;
    passing it through the stream would cost a tf.cond per record.
    """

    def __init__(self) -> None:
        with tf.device("/CPU:0"):
            self.table = tf.lookup.experimental.MutableHashTable(
                tf.int64, tf.int64, default_value=tf.constant([-1, -1], tf.int64)
            )
            self.opened = tf.Variable(0, dtype=tf.int64, trainable=False)


def _record(serialized, path, index, status, lost) -> dict[str, tf.Tensor]:
    return {
        "serialized": serialized,
        "path": path,
        "index": tf.cast(index, tf.int64),
        "status": tf.cast(status, tf.int32),
        "lost": tf.cast(lost, tf.int64),
    }


def opened(path: tf.Tensor) -> tf.Tensor:
    """`path`, once the file has been opened and its first byte read ("" if empty):
    a file that cannot be opened fails here, once.

    Under `ignore_errors` TF's reader retries a failed *open* forever
    (tensorflow#25700), so a shard is opened first by this op, which fails once and
    lets the pipeline go on. (A file that vanishes between the two opens still spins.)
    get_single_element, not reduce: a reduce instantiates a function on each call.
    """
    first = tf.data.FixedLengthRecordDataset(path, record_bytes=1)
    read = first.concatenate(tf.data.Dataset.from_tensors("")).take(1).get_single_element()
    with tf.control_dependencies([read]):
        return tf.identity(path)


def buffer_size(buffer_bytes: int) -> int | None:
    """TFRecordDataset's `buffer_size` for `buffer_bytes`: TF's own default as None
    (passed explicitly, TF logs that its default was overridden)."""
    return None if buffer_bytes == TF_RECORD_BUFFER_BYTES else buffer_bytes


def tfrecords(path: tf.Tensor, buffer_bytes: int) -> tf.data.Dataset:
    """TF's reader over one shard (first `opened`), ended quietly by a CRC/truncation
    error."""

    def records(p):
        return tf.data.TFRecordDataset(p, buffer_size=buffer_size(buffer_bytes)).ignore_errors(
            log_warning=True
        )

    return tf.data.Dataset.from_tensors(path).map(plain(opened)).flat_map(plain(records))


def _read_shard(
    path: tf.Tensor,
    size: tf.Tensor,
    expected: tf.Tensor,
    buffer_bytes: int,
    progress: _Progress,
    stats: ReadStats | None,
) -> tf.data.Dataset:
    """The framed records of one shard: TF's reader, then (if it stopped early) a walk.

    Elements: serialized, path, index (in the shard), status (_OK or a framing
    error), lost (bytes given up after a corrupt length header). With `stats`, the
    number of records framed is compared with `expected` once the shard has ended.

    Every error this raises is raised once: an error that repeats on each retry would
    make the `ignore_errors` steps downstream spin forever (tensorflow#25700).
    """
    # This opening of this shard (identity: a value, not a variable read again later).
    token = tf.identity(progress.opened.assign_add(1))

    def step(state, record):
        offset, index = state
        end = offset + tf.cast(tf.strings.length(record), tf.int64) + 16  # len + framing
        noted = progress.table.insert(token[None], tf.stack([end, index + 1])[None])
        with tf.control_dependencies([noted]):
            end = tf.identity(end)  # a new op, so the insert runs before `end` is used
        return (end, index + 1), _record(record, path, index, _OK, 0)

    zero = tf.constant(0, tf.int64)
    # TF's reader ends the file at a CRC/truncation error; `step` notes how far it got.
    main = tfrecords(path, buffer_bytes)
    tail = tf.data.Dataset.from_tensors(token).flat_map(
        plain(lambda t: _walk(path, size, t, progress, expected, stats))
    )
    return main.scan((zero, zero), plain(step)).concatenate(tail)


def _walk(
    path: tf.Tensor,
    size: tf.Tensor,
    token: tf.Tensor,
    progress: _Progress,
    expected: tf.Tensor,
    stats: ReadStats | None,
):
    """The shard's records after the point where TF's reader stopped, if it stopped early.

    Reads the rest of the file in one go (so a read error happens once), then follows
    the length headers in memory. The first record is the one the reader rejected
    (reported with its cause). The others are taken without their data CRC checked.
    Ends at the end of the file, or at a length header that fails its own CRC (the
    rest is then `lost`). With `stats`, the shard's count is checked where it ends:
    here if TF's reader got to the end of the file, else at the end of the walk.
    """
    got = progress.table.lookup(token[None])[0]
    removed = progress.table.remove(token[None])
    with tf.control_dependencies([removed]):
        start, first_index = tf.maximum(got[0], 0), tf.maximum(got[1], 0)
    rest = size - start
    needed = start < size
    if stats is not None:
        checked = tf.cond(
            needed,
            lambda: tf.constant(True),
            lambda: _check_count(path, first_index, expected, stats),
        )
        with tf.control_dependencies([checked]):
            needed = tf.identity(needed)

    def frames(blob):
        def step(state, _):
            offset, index, first = state  # offset within `blob`
            remaining = rest - offset
            at = tf.minimum(offset, rest)
            # Always 12 bytes (zero-padded), so nothing here can fail.
            header = tf.strings.substr(
                tf.strings.join([tf.strings.substr(blob, at, _LENGTH_HEADER), _ZEROS]),
                0,
                _LENGTH_HEADER,
            )
            raw = tf.cast(tf.io.decode_raw(header, tf.uint8), tf.int64)
            length = _little_endian(raw, 0, 8)
            header_ok = tf.equal(_masked_crc32c(raw, 8), _little_endian(raw, 8, 4))
            end = offset + 16 + length
            status = tf.where(
                remaining <= 0,
                _WALK_DONE,
                tf.where(
                    remaining < _LENGTH_HEADER,
                    _TRUNCATED,
                    tf.where(
                        tf.logical_not(header_ok),
                        _BAD_HEADER,
                        tf.where(
                            (length < 0) | (end > rest),
                            _TRUNCATED,
                            tf.where(first, _BAD_DATA, _OK),
                        ),
                    ),
                ),
            )
            take = tf.where(status == _OK, length, 0)
            data = tf.strings.substr(blob, tf.minimum(at + _LENGTH_HEADER, rest), take)
            framed = (status == _OK) | (status == _BAD_DATA)
            lost = tf.where(status == _BAD_HEADER, remaining, 0)
            if stats is not None:
                # The walk's end: `index` records were framed in all.
                checked = tf.cond(
                    status == _WALK_DONE,
                    lambda: _check_count(path, index, expected, stats),
                    lambda: tf.constant(True),
                )
                with tf.control_dependencies([checked]):
                    status = tf.identity(status)
            element = _record(data, path, index, status, lost)
            return (tf.where(framed, end, rest), index + 1, tf.constant(False)), element

        # A frame takes at least 16 bytes: a bound on the steps.
        ticks = tf.data.Dataset.range(rest // 16 + 2)
        initial = (tf.constant(0, tf.int64), first_index, tf.constant(True))
        walked = ticks.scan(initial, plain(step))
        return walked.take_while(plain(lambda e: e["status"] != _WALK_DONE))

    blob = tf.data.Dataset.from_tensors(start).take(tf.cast(needed, tf.int64))
    blob = blob.map(plain(lambda s: _read_bytes(path, s, size - s, size)))
    # Usually the reader got to the end: take(0) then skips building the walk's
    # iterators (and instantiating their functions) altogether.
    return blob.flat_map(plain(frames)).take(tf.where(needed, tf.constant(-1, tf.int64), 0))


def _check_count(
    path: tf.Tensor, count: tf.Tensor, expected: tf.Tensor, stats: ReadStats
) -> tf.Tensor:
    """Compares the records a shard held (`count`, bad ones included: those are
    reported on their own) with dataset.json's count, unless that is unknown (-1). A
    shortfall is added to the skipped records, an excess to the extra ones, each
    logged naming the shard."""

    def report() -> tf.Tensor:
        missing = tf.maximum(expected - count, 0)
        extra = tf.maximum(count - expected, 0)
        held, listed = tf.strings.as_string(count), tf.strings.as_string(expected)
        text = tf.where(
            missing > 0,
            tf.strings.join(
                ["tfclassify: ", tf.strings.as_string(missing), " records missing from ", path]
                + [": it holds ", held, " of the ", listed, " dataset.json lists (skipped)"]
            ),
            tf.strings.join(
                ["tfclassify: ", tf.strings.as_string(extra), " records too many in ", path]
                + [": it holds ", held, ", dataset.json lists ", listed, " (read, as extra)"]
            ),
        )
        done = [
            tf.print(text, output_stream=sys.stderr),
            stats._skipped.assign_add(missing),
            stats._extra.assign_add(extra),
        ]
        with tf.control_dependencies(done):
            return tf.identity(True)

    agrees = (expected < 0) | tf.equal(count, expected)
    return tf.cond(agrees, lambda: tf.constant(True), report)


def _read_bytes(path: tf.Tensor, offset: tf.Tensor, n: Any, size: tf.Tensor) -> tf.Tensor:
    """`n` bytes of `path` at `offset` (n > 0, offset + n <= size)."""
    n = tf.cast(n, tf.int64)
    ds = tf.data.FixedLengthRecordDataset(
        path, record_bytes=n, header_bytes=offset, footer_bytes=size - offset - n
    )
    return ds.get_single_element()


def _little_endian(raw: tf.Tensor, start: int, count: int) -> tf.Tensor:
    """Unsigned little-endian integer of int64-held bytes raw[start:start + count]."""
    value = tf.constant(0, tf.int64)
    for i in range(count):
        value = tf.bitwise.bitwise_or(value, tf.bitwise.left_shift(raw[start + i], 8 * i))
    return value


def _crc32c_table() -> tuple[int, ...]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return tuple(table)


_CRC32C_TABLE = _crc32c_table()


def _masked_crc32c(raw: tf.Tensor, count: int) -> tf.Tensor:
    """TFRecord's masked CRC32C of int64-held bytes raw[:count], in graph."""
    table = tf.constant(_CRC32C_TABLE, tf.int64)
    mask32 = tf.constant(0xFFFFFFFF, tf.int64)
    crc = mask32
    for i in range(count):
        byte = tf.bitwise.bitwise_and(tf.bitwise.bitwise_xor(crc, raw[i]), 0xFF)
        crc = tf.bitwise.bitwise_xor(tf.gather(table, byte), tf.bitwise.right_shift(crc, 8))
    crc = tf.bitwise.bitwise_xor(crc, mask32)
    rotated = tf.bitwise.bitwise_or(
        tf.bitwise.right_shift(crc, 15),
        tf.bitwise.bitwise_and(tf.bitwise.left_shift(crc, 17), mask32),
    )
    return tf.bitwise.bitwise_and(rotated + 0xA282EAD8, mask32)


def _final_marker() -> dict[str, tf.Tensor]:
    """A record that decodes (a 1x1 PNG) and is then dropped: it closes the last gap."""
    return _record(tf.constant(_FINAL_RECORD), tf.constant(""), -1, _FINAL, 0)


def _empty_window() -> dict[str, tf.Tensor]:
    return {
        "seq": tf.fill([_WINDOW], tf.constant(-1, tf.int64)),
        "path": tf.fill([_WINDOW], tf.constant("")),
        "index": tf.fill([_WINDOW], tf.constant(-1, tf.int64)),
        "status": tf.fill([_WINDOW], tf.constant(_OK)),
        "lost": tf.zeros([_WINDOW], tf.int64),
        "arrived": tf.constant(0, tf.int64),
    }


def _remember(window: dict[str, tf.Tensor], item) -> tuple[dict, dict]:
    """Attaches `window` (the records just before) to a record, then slides it on."""
    seq, record = item
    new = {
        k: tf.concat([window[k][1:], [v]], 0)
        for k, v in (
            ("seq", seq),
            ("path", record["path"]),
            ("index", record["index"]),
            ("status", record["status"]),
            ("lost", record["lost"]),
        )
    }
    # Records seen so far, this one included: fewer than seq + 1 means an error
    # upstream took a number.
    new["arrived"] = window["arrived"] + 1
    return new, {**record, "seq": seq, "window": {**window, "arrived": new["arrived"]}}


def _decode_record(element: dict[str, Any], options: ReadOptions) -> dict[str, Any]:
    framed = tf.debugging.Assert(
        element["status"] < _BAD_DATA, [tf.gather(_STATUS_TEXT, element["status"])]
    )
    with tf.control_dependencies([framed]):
        features = tf.io.parse_single_example(
            element["serialized"], schema.feature_spec(with_label=options.with_labels)
        )
    image = preprocess.decode_one(
        features[schema.ENCODED], features[schema.HEIGHT], features[schema.WIDTH], options
    )
    out = {"image": image, "key": features[schema.FILENAME]}
    if options.with_labels:
        out["label"] = features[schema.LABEL]
    return {
        "out": out,
        "seq": element["seq"],
        "status": element["status"],
        "window": element["window"],
    }


def _account(state, element, options: ReadOptions, stats: ReadStats):
    """Finds the records that did not come through decoding, and reports them."""
    last_seq, last_upstream = state
    seq, window = element["seq"], element["window"]
    # Numbers taken by records that never reached the window: errors upstream.
    upstream = seq + 1 - window["arrived"]
    # Window entries (this record's predecessors) numbered after the previous survivor
    # failed in decoding.
    failed = (window["seq"] > last_seq) & (window["seq"] < seq)
    named = tf.reduce_sum(tf.cast(failed, tf.int64))
    count = seq - last_seq - 1 - (upstream - last_upstream)

    def report():
        paths = tf.boolean_mask(window["path"], failed)
        indices = tf.boolean_mask(window["index"], failed)
        reasons = tf.gather(_STATUS_TEXT, tf.boolean_mask(window["status"], failed))
        lines = tf.strings.join(
            ["tfclassify: bad record ", tf.strings.as_string(indices), " of ", paths, ": ", reasons]
        )
        text = tf.strings.reduce_join(lines, separator="; ")
        # A run longer than the window: the oldest ones can only be counted.
        unnamed = tf.strings.join(["; and ", tf.strings.as_string(count - named), " more"])
        text = tf.where(count > named, tf.strings.join([text, unnamed]), text)
        no_upstream = tf.debugging.Assert(
            upstream == last_upstream,
            ["tfclassify: a read error that is not a bad record (see the TF error logged above)"],
        )
        if not options.skip_errors:
            hint = " (pass skip_errors=True, infer: --skip_errors, to skip, count and log them)"
            checked = [no_upstream, tf.debugging.Assert(count == 0, [text + hint])]
        else:
            printed = tf.print(text, output_stream=sys.stderr)
            lost = tf.reduce_sum(tf.boolean_mask(window["lost"], failed))
            checked = [
                no_upstream,
                printed,
                stats._skipped.assign_add(count),
                stats._lost_bytes.assign_add(lost),
                *stats._name(paths, indices, reasons),
            ]
        with tf.control_dependencies(checked):
            return tf.identity(True)

    # One branch per record would cost a function call each: test first, cheaply.
    clean = (count == 0) & (upstream == last_upstream)
    reported = tf.cond(clean, lambda: tf.constant(True), report)
    with tf.control_dependencies([reported]):
        keep = tf.equal(element["status"], _OK)
    return (seq, upstream), (element["out"], keep)
