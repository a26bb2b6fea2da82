"""`make_dataset()`: converted shards -> batches of {"image", "label", "key"}.

Two straight lines, each ordering choice commented where it is made. The default
for a converted dataset (`_fast_dataset`, record counts known from dataset.json):

    shards -> [shuffle shards] -> interleave(read shard, parse 16 at a time)
      -> unbatch -> [shuffle records] -> parallel map(decode, resize, normalize)
      -> ignore_errors -> batch -> count per shard -> (NCHW) -> prefetch

and, for `skip_errors=True` or shards without known counts, the exact path:

    shards -> [shuffle shards] -> interleave(read shard) -> [shuffle records]
      -> + final marker -> enumerate -> remember predecessors
      -> parallel map(parse, decode, resize, normalize) -> ignore_errors
      -> account for the gaps -> filter -> batch -> (NCHW) -> prefetch

Bad records
-----------
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

By default (`skip_errors=False`) the first bad record raises
`tf.errors.InvalidArgumentError` ("tfclassify: bad record <i> of <shard>: <reason>").
TF logs the underlying error as a warning just before. With `skip_errors=True` each
bad record is logged to stderr with the same text and counted in `ReadStats`, and
reading goes on.

Cost: the bookkeeping adds a handful of per-record steps (a scan with a table insert,
enumerate, a window scan, ignore_errors, a gap scan, a filter) to a bare
read -> map -> batch pipeline. On the 2-core CI VM (224 px, 500x375 JPEGs, 600-record
shards) that measured +0.4-0.6 ms CPU per image over ~1.9 ms, mostly tf.data's fixed
cost per step and per op. So for a converted dataset in strict mode (record counts
known from dataset.json), `make_dataset` takes `_fast_dataset` instead: a plain
pipeline that checks the counts per shard at the end.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Sequence
from typing import Any

import tensorflow as tf

from tfclassify import metadata, runtime, schema
from tfclassify.errors import InputError, OptionsError
from tfclassify.options import READ_DATA_FORMATS, ReadOptions

__all__ = [
    "ReadStats",
    "choose_ratio",
    "decode_and_resize",
    "make_dataset",
    "resize_target",
    "resolve_shards",
    "validate_data_format",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
JPEG_RATIOS = (1, 2, 4, 8)  # the scales libjpeg can produce in the DCT domain

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_GLOB_CHARS = "*?["
# Resize methods whose output can leave the input's value range.
_OVERSHOOTING = ("bicubic", "lanczos3", "lanczos5", "mitchellcubic", "area", "gaussian")
# Records parsed per vectorized parse step; small enough that one that fails to parse
# takes few others with it.
_PARSE_BATCH = 16
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
# tf.train.Example with a 1x1 PNG: the final marker, which must decode.
_FINAL_RECORD = bytes.fromhex(
    "0a5a0a580a0d696d6167652f656e636f64656412470a450a4389504e470d0a1a0a0000000d494844"
    "52000000010000000108000000003a7e9b550000000a49444154789c636000000002000148afa471"
    "0000000049454e44ae426082"
)


# ---------------------------------------------------------------- public helpers


class ReadStats:
    """Counts of the bad records a `make_dataset` pipeline skipped.

    The counters are tf.Variables updated inside the pipeline. They only grow when
    `skip_errors=True` (otherwise the first bad record raises). They are exact once
    the dataset is exhausted. Before that they may include records read ahead
    (prefetch) that the caller has not seen yet. Iterating again adds to them; call
    `reset()` between passes to count one pass.
    """

    def __init__(self) -> None:
        # On the host: the pipeline runs there, even when a GPU is present.
        with tf.device("/CPU:0"):
            self._skipped = tf.Variable(0, dtype=tf.int64, trainable=False)
            self._lost_bytes = tf.Variable(0, dtype=tf.int64, trainable=False)

    @property
    def skipped(self) -> int:
        """Bad records skipped. An unframeable shard tail counts as one."""
        return int(self._skipped.numpy())

    @property
    def lost_bytes(self) -> int:
        """Bytes after a corrupt length header, which could not be split into records."""
        return int(self._lost_bytes.numpy())

    def reset(self) -> None:
        self._skipped.assign(0)
        self._lost_bytes.assign(0)

    def as_dict(self) -> dict[str, int]:
        return {"skipped": self.skipped, "lost_bytes": self.lost_bytes}

    def __repr__(self) -> str:
        return f"ReadStats(skipped={self.skipped}, lost_bytes={self.lost_bytes})"


def resolve_shards(
    source: str | os.PathLike | Sequence[str | os.PathLike], split: str
) -> list[str]:
    """The shard files a source names, checked to exist.

    Args:
      source: a converted dataset directory (has dataset.json), a glob, one shard
        file, or a list of shard files.
      split: the split read from a dataset directory.

    Returns:
      Shard paths: in dataset.json order, sorted for a glob, as given for a list.

    Raises:
      InputError: a directory without dataset.json or without the split, a glob
        that matches no file, a missing shard, an empty list.
    """
    if isinstance(source, (str, os.PathLike)):
        src = os.fspath(source)
        if os.path.isdir(src):
            paths = metadata.load(src).shard_paths(split)
        elif any(c in src for c in _GLOB_CHARS):
            paths = sorted(p for p in tf.io.gfile.glob(src) if not tf.io.gfile.isdir(p))
            if not paths:
                raise InputError(f"no shard files match the pattern {src!r}")
        elif not tf.io.gfile.exists(src):
            raise InputError(
                f"source not found: {src!r} (expected a dataset directory with "
                f"{metadata.METADATA_FILE}, a glob, or shard files)"
            )
        else:
            paths = [src]
    elif isinstance(source, Sequence):
        paths = [os.fspath(p) for p in source]
        if not paths:
            raise InputError("source is an empty list of shard paths")
    else:
        raise InputError(
            "source must be a dataset directory, a glob, a shard path or a list of shard "
            f"paths, got {type(source).__name__}"
        )
    missing = [p for p in paths if not tf.io.gfile.exists(p)]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise InputError(f"shard not found: {missing[0]}{more}")
    return paths


def resize_target(height: int, width: int, options: ReadOptions) -> tuple[int, int]:
    """Size an image of `height` x `width` is resized to, before any crop or pad.

    `squash`: image_size. `center_crop`: aspect kept, just covering
    image_size / crop_fraction (never smaller than image_size). `pad`: aspect
    kept, just fitting inside image_size. Mirrors the graph code exactly (same
    float64 operations, round half to even).
    """
    th, tw = options.image_size
    if options.resize == "squash":
        return th, tw
    if options.resize == "center_crop":
        scale = max(th / height, tw / width) / options.crop_fraction
        return max(th, round(height * scale)), max(tw, round(width * scale))
    scale = min(th / height, tw / width)
    return min(th, max(1, round(height * scale))), min(tw, max(1, round(width * scale)))


def choose_ratio(height: int, width: int, target_height: int, target_width: int) -> int:
    """Largest JPEG DCT downscale (8, 4, 2) leaving at least the target size, else 1.

    `decode_jpeg(ratio=r)` yields ceil(h/r) x ceil(w/r) at a fraction of the full
    decode's cost. r qualifies when h >= r * target_height and w >= r * target_width,
    so the resize that follows still only shrinks (or keeps) the image.
    """
    for r in (8, 4, 2):
        if height >= r * target_height and width >= r * target_width:
            return r
    return 1


def validate_data_format(data_format: str, device: str | None = None) -> str:
    """Checks a layout against where the model runs; returns it.

    Args:
      data_format: `NHWC` or `NCHW`.
      device: a TF device string (`/CPU:0`, `/GPU:0`, `cpu`, `gpu`); None means
        the GPU if TF sees one, else the CPU.

    Raises:
      OptionsError: an unknown layout, or NCHW on a CPU. TF's CPU conv/pool kernels are
        NHWC only, so an NCHW model fails there at its first convolution.
    """
    if data_format not in READ_DATA_FORMATS:
        raise OptionsError(f"data_format must be one of {READ_DATA_FORMATS}, got {data_format!r}")
    if device is None:
        on_cpu = not tf.config.list_physical_devices("GPU")
        where = "this host (no GPU visible to TF)"
    else:
        on_cpu = "CPU" in device.upper()
        where = repr(device)
    if data_format == "NCHW" and on_cpu:
        raise OptionsError(
            f"data_format 'NCHW' on {where}: TF CPU conv kernels are NHWC-only "
            "(channels-first convolutions and pooling run only on a GPU); use 'NHWC'"
        )
    return data_format


def decode_and_resize(
    encoded: Any,
    options: ReadOptions | None = None,
    *,
    height: Any = None,
    width: Any = None,
) -> tf.Tensor:
    """Decodes one encoded image exactly as `make_dataset` does; eager or in graph.

    The format is sniffed from the bytes: JPEG (DCT-domain downscale when allowed),
    PNG, else anything `tf.io.decode_image` reads (GIF: first frame; BMP; WebP).
    Always 3 channels. EXIF orientation is not applied: the converter bakes it in.

    Args:
      encoded: scalar string tensor (or bytes) of the encoded image.
      options: resize, normalize and dtype settings; defaults to `ReadOptions()`.
      height, width: the stored image size (a record's image/height, image/width).
        They pick the JPEG decode scale without parsing the header. None reads the
        JPEG header instead; 0 (unknown) decodes at full scale.

    Returns:
      A [height, width, 3] tensor of `options.image_size` and `options.dtype`.
    """
    options = options or ReadOptions()
    encoded = tf.convert_to_tensor(encoded, tf.string)
    if height is None or width is None:
        # Read the size from the JPEG header: it picks the DCT scale.
        size = tf.cond(
            tf.io.is_jpeg(encoded) & options.allow_ratio_decode,
            lambda: tf.cast(tf.io.extract_jpeg_shape(encoded)[:2], tf.int64),
            lambda: tf.zeros([2], tf.int64),
        )
        height, width = size[0], size[1]
    return _decode_one(encoded, height, width, options)


def _decode_one(encoded: tf.Tensor, height: Any, width: Any, options: ReadOptions) -> tf.Tensor:
    """`_decode_placed` for one image whose stored size may be unknown (0)."""
    size = tf.cast(tf.stack([height, width]), tf.int64)[None]
    need, ratio = _geometry(size, options)
    known = tf.reduce_all(size > 0)
    return _decode_placed(encoded, need[0], ratio[0], options, size_known=known)


# ---------------------------------------------------------------- the pipeline


def make_dataset(
    source: str | os.PathLike | Sequence[str | os.PathLike],
    options: ReadOptions | None = None,
    *,
    stats: ReadStats | None = None,
) -> tf.data.Dataset:
    """Batches of {"image", "label", "key"} from converted shards.

    Args:
      source: a converted dataset directory (reads `options.split`), a glob, a
        shard path, or a list of shard paths. Shards must be uncompressed TFRecords
        of `tfclassify.schema` Examples.
      options: every knob; defaults to `ReadOptions()`.
      stats: receives the skipped-record counts (see `ReadStats`). Pass one to
        report them; without it the pipeline still logs every skip.

    Returns:
      A dataset of dicts: "image" [B, H, W, 3] (or [B, 3, H, W] for NCHW) of
      `options.dtype`, "label" int64 [B] (-1 when a record has none; absent with
      `with_labels=False`), "key" string [B] (image/filename). B < batch_size only
      for a last batch without `drop_remainder`.

    Raises:
      InputError: the source names no readable shards (see `resolve_shards`).
      tf.errors.InvalidArgumentError: while iterating, unless `options.skip_errors`:
        on the first bad record ("tfclassify: bad record <i> of <shard>: <reason>"),
        or, for shards whose record counts dataset.json gives, after the last
        record ("<shard>: read <n> of <m> records"). Also, with or without
        skip_errors, on a read error that is not a bad record (a shard that
        vanished or cannot be read).
    """
    options = options or ReadOptions()
    stats = stats or ReadStats()
    paths = resolve_shards(source, options.split)
    counts = expected_counts(source, paths)
    if counts is not None and not options.skip_errors:
        # Shards with a dataset.json: the plain pipeline, with bad records found at the
        # end as a per-shard shortfall. Several times faster than the per-record
        # bookkeeping below, which exact positions (skip_errors) and shards without
        # known counts need.
        return _fast_dataset(paths, counts, options)
    sizes = [tf.io.gfile.stat(p).length for p in paths]
    cycle = min(len(paths), options.cycle_length or runtime.available_cpus())
    reader = functools.partial(
        _read_shard, buffer_bytes=options.reader_buffer_kb * 1024, progress=_Progress()
    )

    # Shard paths with their sizes: the reader checks it read each file to its end.
    ds = tf.data.Dataset.from_tensor_slices((paths, tf.constant(sizes, tf.int64)))
    if options.shuffle_files:
        # Shard order first: the whole list fits in the buffer, so this is a full and
        # nearly free shuffle that the record buffer below then refines.
        ds = ds.shuffle(len(paths), seed=options.seed, reshuffle_each_iteration=True)
    # Read `cycle` shards at once to overlap file latency and mix shards. The cycle is
    # capped at the shard count and the CPUs: each open shard holds a read buffer, and
    # interleave opens 2 x cycle more ahead.
    ds = ds.interleave(
        _plain(reader),
        cycle_length=cycle,
        block_length=options.block_length,
        num_parallel_calls=options.interleave_parallelism,
        deterministic=options.deterministic,
    )
    if options.shuffle_buffer:
        # Shuffle serialized records, before decoding: a buffer of encoded bytes is many
        # times smaller than the same buffer of decoded float images.
        ds = ds.shuffle(options.shuffle_buffer, seed=options.seed, reshuffle_each_iteration=True)
    # A marker after the last record, so a failure at the very end still leaves a gap.
    ds = ds.concatenate(tf.data.Dataset.from_tensors(_final_marker()))
    # Number the records before decoding: a number that does not come out of the decode
    # step is a record that failed there (or, upstream, an error that is not a record's).
    ds = ds.enumerate()
    # Each record carries the identity of the _WINDOW records before it, so the next
    # record to come through can name the ones that did not.
    ds = ds.scan(_empty_window(), _plain(_remember))
    # Parse, decode, resize, normalize: per image, in parallel. Per record
    # (parse_single_example), not batched, so a malformed Example fails alone; parsing
    # costs ~1% of a decode. In order (deterministic=True), whatever `deterministic`
    # says: the gap check below relies on it.
    ds = ds.map(
        _plain(functools.partial(_decode_record, options=options)),
        num_parallel_calls=options.map_parallelism,
        deterministic=True,
    )
    # Decode errors cannot be caught inside a graph function: drop the failed element
    # here (TF logs its error), and account for it just below.
    ds = ds.ignore_errors(log_warning=True)
    # Find the gaps in the numbering: name, count and log (or raise on) bad records.
    ds = ds.scan(
        (tf.constant(-1, tf.int64), tf.constant(0, tf.int64)),
        _plain(functools.partial(_account, options=options, stats=stats)),
    )
    ds = ds.filter(_plain(lambda element, keep: keep))
    # Batch after the per-image work: every image now has the same static shape.
    ds = ds.batch(options.batch_size, drop_remainder=options.drop_remainder)
    # Once per batch: drop the `keep` flag, transpose to NCHW when asked.
    ds = ds.map(_plain(lambda out, keep: _finish_batch(out, options)))
    if options.prefetch:
        # Prefetch last, so the consumer's step overlaps preparing the next batch.
        ds = ds.prefetch(options.prefetch)
    return ds.with_options(tf_data_options(options))


# ---------------------------------------------------------------- pipeline stages


def _plain(fn):
    """Marks a tf.data function as plain graph code: it uses tf.cond explicitly, so
    AutoGraph's source conversion (most of the tracing time) buys nothing."""
    return tf.autograph.experimental.do_not_convert(fn)


def autotune_options(enabled: bool = False) -> tf.data.Options:
    """Options switching only tf.data's autotuning model (see `ReadOptions.autotune`),
    for pipelines that are not readers of our shards (the benchmarks' Keras baseline)."""
    opts = tf.data.Options()
    opts.autotune.enabled = enabled
    return opts


def tf_data_options(options: ReadOptions) -> tf.data.Options:
    """The `tf.data.Options` part of `options`, for any pipeline over our shards."""
    opts = autotune_options(options.autotune)
    if options.ram_budget_mb is not None:
        opts.autotune.ram_budget = options.ram_budget_mb * 2**20
    if options.private_threadpool_size is not None:
        opts.threading.private_threadpool_size = options.private_threadpool_size
    if options.max_intra_op_parallelism is not None:
        opts.threading.max_intra_op_parallelism = options.max_intra_op_parallelism
    if options.deterministic is not None:
        opts.deterministic = options.deterministic
    opts.experimental_optimization.apply_default_optimizations = options.graph_rewrites
    return opts


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


def _tfrecords(path: tf.Tensor, buffer_bytes: int) -> tf.data.Dataset:
    """TF's reader over one shard, ended quietly by a CRC/truncation error.

    Under `ignore_errors` TF's reader retries a failed *open* forever
    (tensorflow#25700). The file is therefore opened first inside a map: a map fails
    once, then ends. (A file that vanishes between the two opens still spins.)
    """

    def readable(p):
        # Opens the file and reads its first byte ("" when empty). get_single_element,
        # not reduce: a reduce instantiates a function on each call (~10 ms a shard).
        first = tf.data.FixedLengthRecordDataset(p, record_bytes=1)
        read = first.concatenate(tf.data.Dataset.from_tensors("")).take(1).get_single_element()
        with tf.control_dependencies([read]):
            return tf.identity(p)

    def records(p):
        return tf.data.TFRecordDataset(p, buffer_size=buffer_bytes).ignore_errors(log_warning=True)

    opened = tf.data.Dataset.from_tensors(path).map(_plain(readable))
    return opened.flat_map(_plain(records))


def _read_shard(
    path: tf.Tensor, size: tf.Tensor, buffer_bytes: int, progress: _Progress
) -> tf.data.Dataset:
    """The framed records of one shard: TF's reader, then (if it stopped early) a walk.

    Elements: serialized, path, index (in the shard), status (_OK or a framing
    error), lost (bytes given up after a corrupt length header).

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
    main = _tfrecords(path, buffer_bytes)
    tail = tf.data.Dataset.from_tensors(token).flat_map(
        _plain(lambda t: _walk(path, size, t, progress))
    )
    return main.scan((zero, zero), _plain(step)).concatenate(tail)


def _walk(path: tf.Tensor, size: tf.Tensor, token: tf.Tensor, progress: _Progress):
    """The shard's records after the point where TF's reader stopped, if it stopped early.

    Reads the rest of the file in one go (so a read error happens once), then follows
    the length headers in memory. The first record is the one the reader rejected
    (reported with its cause). The others are taken without their data CRC checked.
    Ends at the end of the file, or at a length header that fails its own CRC (the
    rest is then `lost`).
    """
    got = progress.table.lookup(token[None])[0]
    removed = progress.table.remove(token[None])
    with tf.control_dependencies([removed]):
        start, first_index = tf.maximum(got[0], 0), tf.maximum(got[1], 0)
    rest = size - start

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
            element = _record(data, path, index, status, lost)
            return (tf.where(framed, end, rest), index + 1, tf.constant(False)), element

        # A frame takes at least 16 bytes: a bound on the steps.
        ticks = tf.data.Dataset.range(rest // 16 + 2)
        initial = (tf.constant(0, tf.int64), first_index, tf.constant(True))
        walked = ticks.scan(initial, _plain(step))
        return walked.take_while(_plain(lambda e: e["status"] != _WALK_DONE))

    needed = start < size
    blob = tf.data.Dataset.from_tensors(start).take(tf.cast(needed, tf.int64))
    blob = blob.map(_plain(lambda s: _read_bytes(path, s, size - s, size)))
    # Usually the reader got to the end: take(0) then skips building the walk's
    # iterators (and instantiating their functions) altogether.
    return blob.flat_map(_plain(frames)).take(tf.where(needed, tf.constant(-1, tf.int64), 0))


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
    image = _decode_one(
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
        lines = tf.strings.join(
            [
                "tfclassify: bad record ",
                tf.strings.as_string(tf.boolean_mask(window["index"], failed)),
                " of ",
                tf.boolean_mask(window["path"], failed),
                ": ",
                tf.gather(_STATUS_TEXT, tf.boolean_mask(window["status"], failed)),
            ]
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
            hint = " (pass skip_errors=True to skip, count and log bad records instead)"
            checked = [no_upstream, tf.debugging.Assert(count == 0, [text + hint])]
        else:
            printed = tf.print(text, output_stream=sys.stderr)
            lost = tf.reduce_sum(tf.boolean_mask(window["lost"], failed))
            checked = [
                no_upstream,
                printed,
                stats._skipped.assign_add(count),
                stats._lost_bytes.assign_add(lost),
            ]
        with tf.control_dependencies(checked):
            return tf.identity(True)

    # One branch per record would cost a function call each: test first, cheaply.
    clean = (count == 0) & (upstream == last_upstream)
    reported = tf.cond(clean, lambda: tf.constant(True), report)
    with tf.control_dependencies([reported]):
        keep = tf.equal(element["status"], _OK)
    return (seq, upstream), (element["out"], keep)


def _finish_batch(batch: dict[str, tf.Tensor], options: ReadOptions) -> dict[str, tf.Tensor]:
    """Once per batch, one op: channels-first for a GPU model."""
    if options.data_format == "NCHW":
        return {**batch, "image": tf.transpose(batch["image"], [0, 3, 1, 2])}
    return batch


# ---------------------------------------------------------------- decode, resize, normalize


def _geometry(size: tf.Tensor, options: ReadOptions) -> tuple[tf.Tensor, tf.Tensor]:
    """Resize target and JPEG scale for stored sizes, vectorized over a batch.

    Args:
      size: int64 [B, 2] stored (height, width); 0 where unknown.

    Returns:
      need: int64 [B, 2], the size to resize to before any crop or pad
        (`resize_target`'s graph twin: the same float64 steps).
      ratio: int32 [B], an index into JPEG_RATIOS: the largest DCT downscale that
        still leaves `need` (`choose_ratio`'s twin), 0 for an unknown size.
    """
    known = tf.reduce_all(size > 0, axis=1)
    size = tf.maximum(size, 1)
    target = tf.constant(options.image_size, tf.int64)
    if options.resize == "squash":
        need = tf.broadcast_to(target, tf.shape(size))
    else:
        sizef = tf.cast(size, tf.float64)
        ratios = tf.cast(target, tf.float64) / sizef
        if options.resize == "center_crop":
            scale = tf.reduce_max(ratios, axis=1, keepdims=True) / options.crop_fraction
            need = tf.maximum(target, tf.cast(tf.round(sizef * scale), tf.int64))
        else:
            scale = tf.reduce_min(ratios, axis=1, keepdims=True)
            need = tf.minimum(target, tf.maximum(tf.cast(tf.round(sizef * scale), tf.int64), 1))
    if not options.allow_ratio_decode:
        return need, tf.zeros(tf.shape(size)[:1], tf.int32)
    # Qualifying ratios are nested (8 fits => 4 fits => 2 fits): their count is the
    # index of the largest.
    steps = tf.constant(JPEG_RATIOS[1:], tf.int64)[None, :, None]
    fits = tf.reduce_all(size[:, None, :] >= steps * need[:, None, :], axis=2)
    ratio = tf.reduce_sum(tf.cast(fits, tf.int32), axis=1)
    return need, tf.where(known, ratio, 0)


def _decode_placed(
    encoded: tf.Tensor,
    need: tf.Tensor,
    ratio: tf.Tensor,
    options: ReadOptions,
    *,
    size_known: Any = True,
) -> tf.Tensor:
    """One image of `options.image_size`, normalized, of `options.dtype`: the
    per-image work.

    Inside tf.data every op of a map function is dispatched once per image, and for
    small images that dispatch costs as much as the decode. So the geometry comes in
    precomputed (`_geometry`, vectorized over a batch), one Case op picks the decoder,
    and normalization is one multiply-add.

    Args:
      encoded: scalar string, the encoded image.
      need, ratio: this image's row of `_geometry`.
      options: the read options.
      size_known: False (or a bool tensor) when `need` was not computed from the
        stored size; it is then recomputed from the decoded image. A converted
        dataset always stores the size.
    """
    is_jpeg = tf.io.is_jpeg(encoded)
    is_png = tf.equal(tf.strings.substr(encoded, 0, len(_PNG_MAGIC)), _PNG_MAGIC)

    def jpeg(r):
        # `ratio` must be a Python int, so each scale gets its own branch.
        return lambda: tf.io.decode_jpeg(
            encoded, channels=3, ratio=r, dct_method=options.dct_method
        )

    def png():
        return tf.io.decode_png(encoded, channels=3)

    def other():
        return tf.io.decode_image(encoded, channels=3, expand_animations=False)

    index = tf.where(is_jpeg, ratio, tf.where(is_png, len(JPEG_RATIOS), len(JPEG_RATIOS) + 1))
    image = tf.switch_case(index, [jpeg(r) for r in JPEG_RATIOS] + [png, other])
    image.set_shape([None, None, 3])
    if size_known is not True and options.resize != "squash":
        decoded = tf.shape(image, out_type=tf.int64)[None, :2]
        need = tf.where(size_known, need, _geometry(decoded, options)[0][0])
    return _normalize(_resize_and_place(image, need, options), options)


def _resize_and_place(image: tf.Tensor, need: tf.Tensor, options: ReadOptions) -> tf.Tensor:
    """float32 [H, W, 3] in [0, 255]: `image` resized to `need`, then cropped or padded.

    An image that already has the size `need` (shards pre-resized at conversion) is
    cropped or padded as stored, before its conversion to float: every resize method
    is the identity then.
    """
    size = tf.cast(need, tf.int32)

    def resized() -> tf.Tensor:
        if options.resize_method == "bilinear" and not options.antialias:
            # What tf.image.resize runs for these settings, without its wrapper's
            # per-call checks and reshapes (a dozen ops per image).
            return tf.raw_ops.ResizeBilinear(
                images=image[None], size=size, half_pixel_centers=True
            )[0]
        resize = tf.image.resize(
            image, size, method=options.resize_method, antialias=options.antialias
        )
        return tf.cast(resize, tf.float32)  # `nearest` keeps uint8

    same = tf.reduce_all(tf.equal(tf.shape(image)[:2], size))
    return tf.cond(
        same,
        lambda: tf.cast(_place(image, need, options), tf.float32),
        lambda: _place(resized(), need, options),
    )


def _place(image: tf.Tensor, need: tf.Tensor, options: ReadOptions) -> tf.Tensor:
    """The resized image cropped (center_crop) or padded (pad) to image_size."""
    th, tw = options.image_size
    target = tf.constant(options.image_size, tf.int64)
    if options.resize == "center_crop":
        start = tf.concat([(need - target) // 2, [0]], 0)
        image = tf.slice(image, start, [th, tw, 3])
    elif options.resize == "pad":
        before = (target - need) // 2
        paddings = tf.stack([before, target - need - before], axis=1)
        image = tf.pad(image, tf.concat([paddings, [[0, 0]]], 0))
    image.set_shape([th, tw, 3])
    return image


def _normalize(image: tf.Tensor, options: ReadOptions) -> tf.Tensor:
    """Per image, right after the resize: the pixels are still in cache, and the work
    is spread over the map's threads. (Once per batch it was a single pass over the
    whole batch in memory: at 224 px, a third of the reader's time.) One multiply-add.
    """
    if options.antialias or options.resize_method in _OVERSHOOTING:
        # These kernels can leave [0, 255] (negative lobes, or rounding in a weighted
        # sum); plain bilinear interpolation and nearest cannot.
        image = tf.clip_by_value(image, 0.0, 255.0)
    if options.normalize == "unit":
        image = image * (1 / 255)
    elif options.normalize == "symmetric":
        image = image * (1 / 127.5) - 1.0
    elif options.normalize == "imagenet":
        # (x / 255 - mean) / std, folded into one scale and offset per channel.
        scale = [1 / (255 * s) for s in IMAGENET_STD]
        offset = [-m / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD, strict=True)]
        image = image * scale + offset
    if options.dtype == "uint8":
        return tf.cast(tf.round(image), tf.uint8)
    return tf.cast(image, options.dtype)


# ---------------------------------------------------------------- the fast default path


def expected_counts(
    source: str | os.PathLike | Sequence[str | os.PathLike], paths: Sequence[str]
) -> list[int] | None:
    """Records each shard should hold, from the dataset.json beside the shards, if any.

    Known counts let the default pipeline skip TF's per-record error plumbing and
    still fail loudly: whatever could not be read shows up as a shortfall.
    """
    dirs = {os.path.dirname(os.path.abspath(p)) for p in paths}
    if len(dirs) != 1:
        return None
    directory = dirs.pop()
    if not os.path.isfile(os.path.join(directory, metadata.METADATA_FILE)):
        return None
    try:
        info = metadata.load(directory)
    except Exception:  # a foreign or damaged dataset.json: read without the check
        return None
    by_file = {
        os.path.join(directory, s.file): s.num_examples
        for split in info.splits.values()
        for s in split.shards
    }
    counts = [by_file.get(os.path.abspath(p)) for p in paths]
    return None if any(c is None for c in counts) else [int(c) for c in counts]


def _fast_dataset(
    paths: Sequence[str], counts: Sequence[int], options: ReadOptions
) -> tf.data.Dataset:
    """The default pipeline: plain tf.data stages, no per-record bookkeeping.

    Bad records (CRC, truncation, undecodable image) are dropped where they fail and
    found at the end by comparing records per shard with dataset.json: the last
    element then raises an error naming each short shard.
    """
    n = len(paths)
    ds = tf.data.Dataset.from_tensor_slices((list(paths), tf.range(n, dtype=tf.int64)))
    if options.shuffle_files:
        # The whole shard list fits in the buffer: a full, nearly free shuffle.
        ds = ds.shuffle(n, seed=options.seed, reshuffle_each_iteration=True)

    spec = schema.feature_spec(with_label=options.with_labels)

    def parse(serialized: tf.Tensor, shard: tf.Tensor):
        f = tf.io.parse_example(serialized, spec)
        need, ratio = _geometry(tf.stack([f[schema.HEIGHT], f[schema.WIDTH]], axis=1), options)
        out = {"encoded": f[schema.ENCODED], "key": f[schema.FILENAME]}
        if options.with_labels:
            out["label"] = f[schema.LABEL]
        return out, need, ratio, tf.fill(tf.shape(serialized), shard)

    def read(path: tf.Tensor, shard: tf.Tensor) -> tf.data.Dataset:
        # A CRC error ends this shard only; the shortfall is reported at the end.
        records = _tfrecords(path, options.reader_buffer_kb * 1024)
        # Parse and plan the geometry a few records at a time (the tf.data guide's
        # "vectorized mapping"): a handful of ops per group instead of per image. A
        # record that does not parse drops its group, which the count check reports.
        group = _PARSE_BATCH * options.block_length
        return records.batch(group).map(_plain(lambda r: parse(r, shard))).ignore_errors()

    # Read several shards at once: overlaps file latency and mixes shards. Capped at
    # the shard count and the CPUs, since each open shard holds a read buffer.
    ds = ds.interleave(
        _plain(read),
        cycle_length=min(n, options.cycle_length or runtime.available_cpus()),
        num_parallel_calls=options.interleave_parallelism,
        deterministic=options.deterministic,
    ).unbatch()
    if options.shuffle_buffer:
        # Shuffle before decoding: encoded bytes are far smaller than decoded images.
        ds = ds.shuffle(options.shuffle_buffer, seed=options.seed, reshuffle_each_iteration=True)

    def decode(out: dict[str, tf.Tensor], need: tf.Tensor, ratio: tf.Tensor, shard: tf.Tensor):
        # A converted dataset stores every image's size: `need` is always known.
        image = _decode_placed(out["encoded"], need, ratio, options)
        return {k: v for k, v in out.items() if k != "encoded"} | {"image": image}, shard

    # Decode + resize per image, in parallel: the expensive stage.
    ds = ds.map(
        _plain(decode),
        num_parallel_calls=options.map_parallelism,
        deterministic=options.deterministic,
    )
    ds = ds.ignore_errors()
    # Batch after the per-image work: every image now has the same static shape.
    # The shard index rides along as a [B] vector, so counting costs one op a batch.
    ds = ds.batch(options.batch_size)
    ds = _check_counts(ds, paths, counts)
    if options.data_format == "NCHW":
        ds = ds.map(_plain(functools.partial(_finish_batch, options=options)))
    if options.drop_remainder:
        # Counted before dropping: a short last batch is not a bad record.
        bs = options.batch_size
        ds = ds.filter(_plain(lambda b: tf.shape(b["key"])[0] == bs)).map(
            _plain(lambda b: {k: tf.ensure_shape(v, [bs, *v.shape[1:]]) for k, v in b.items()})
        )
    if options.prefetch:
        # Last, so the consumer's step overlaps preparing the next batch.
        ds = ds.prefetch(options.prefetch)
    return ds.with_options(tf_data_options(options))


def _check_counts(
    ds: tf.data.Dataset, paths: Sequence[str], counts: Sequence[int]
) -> tf.data.Dataset:
    """Counts records per shard, a batch at a time; after the last, raises naming
    every shard that came up short."""
    n = len(paths)
    expected = tf.constant(list(counts), tf.int64)
    names = tf.constant(list(paths))
    spec = ds.element_spec[0]
    end = {k: tf.zeros([0, *s.shape[1:]], s.dtype) for k, s in spec.items()}
    # One empty batch marks the end of the stream.
    marker = tf.data.Dataset.from_tensors((end, tf.zeros([0], tf.int64), True))
    ds = ds.map(_plain(lambda out, shard: (out, shard, False))).concatenate(marker)

    def step(seen: tf.Tensor, item):
        out, shard, is_end = item
        seen = seen + tf.math.bincount(shard, minlength=n, maxlength=n, dtype=tf.int64)

        def at_end() -> tf.Tensor:
            bad = tf.not_equal(seen, expected)
            # gather, not boolean_mask: the same result, for a tenth of the tracing
            # time (boolean_mask is a dozen ops; this graph is traced on every call).
            short = tf.where(bad)[:, 0]
            lines = tf.strings.join(
                [
                    tf.gather(names, short),
                    ": read ",
                    tf.strings.as_string(tf.gather(seen, short)),
                    " of ",
                    tf.strings.as_string(tf.gather(expected, short)),
                    " records",
                ]
            )
            text = tf.strings.join(
                [
                    "tfclassify: unreadable records (corrupt TFRecord or undecodable image) in ",
                    tf.strings.reduce_join(lines, separator="; "),
                    "; pass skip_errors=True to skip them and log each one",
                ]
            )
            ok = tf.debugging.Assert(tf.logical_not(tf.reduce_any(bad)), [text])
            with tf.control_dependencies([ok]):
                return tf.identity(False)

        keep = tf.cond(is_end, at_end, lambda: tf.constant(True))
        return seen, (out, keep)

    ds = ds.scan(tf.zeros([n], tf.int64), _plain(step))
    return ds.filter(_plain(lambda out, keep: keep)).map(_plain(lambda out, keep: out))
