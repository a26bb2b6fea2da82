"""`make_dataset()`: converted shards -> batches of {"image", "label", "key"}.

Two straight lines, each ordering choice commented where it is made. The default
for a converted dataset (`_fast_dataset`, record counts known from dataset.json):

    shards -> [shuffle shards] -> interleave(read shard, parse 16 at a time)
      -> unbatch -> [shuffle records] -> parallel map(decode, resize, normalize)
      -> ignore_errors -> batch -> count per shard (the last batch released after
      the check) -> (NCHW) -> batch count from dataset.json -> prefetch

and, for `skip_errors=True` or shards without known counts, the exact path
(`records.exact_dataset`, which also explains how bad records are found):

    shards -> [shuffle shards] -> interleave(read shard) -> [shuffle records]
      -> + final marker -> enumerate -> remember predecessors
      -> parallel map(parse, decode, resize, normalize) -> ignore_errors
      -> account for the gaps -> filter -> batch -> (NCHW) -> prefetch

Both run the same per-image work (`preprocess`) under the same tf.data options
(`tfdata`). The default path drops a bad record where it fails and raises after the
last batch, naming each shard that came up short; the exact path names every bad
record by shard and position as it goes, at a CPU cost per image (benchmarks/NOTES.md).

Before either, every shard must be a regular file, and each one dataset.json lists
must have the size it gives: a shard emptied, cut, or with records dropped or added
is refused (strict) or logged (skip_errors), before a record is read. With
skip_errors, each listed shard's record count is checked when it ends, so a full
pass accounts for every record: delivered + skipped - extra = listed.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
from collections.abc import Sequence

import tensorflow as tf
from absl import logging

from tfclassify.core import metadata, schema, shardfiles
from tfclassify.core.errors import DataError, InputError, OptionsError
from tfclassify.core.options import SHUFFLE_BUFFER, ReadOptions
from tfclassify.core.tfdata import parallel, plain, tf_data_options
from tfclassify.reading.preprocess import (
    choose_ratio,
    decode_and_resize,
    decode_placed,
    finish_batch,
    geometry,
    resize_target,
)
from tfclassify.reading.records import (
    ReadStats,
    buffer_size,
    exact_dataset,
    interleave_shards,
    opened,
)

__all__ = [
    "ReadStats",
    "choose_ratio",
    "decode_and_resize",
    "make_dataset",
    "read_error",
    "resize_target",
    "resolve_shards",
]

_GLOB_CHARS = "*?["
# Records parsed per vectorized parse step; small enough that one that fails to parse
# takes few others with it.
_PARSE_BATCH = 16
_TF_FUNCTION = re.compile(r"^\{\{function_node [^}]*\}\}\s*")
# The split `make_dataset` shuffles when neither `shuffle` nor `options` says.
_TRAIN_SPLIT = "train"


# ---------------------------------------------------------------- public helpers


def resolve_shards(
    source: str | os.PathLike | Sequence[str | os.PathLike], split: str
) -> list[str]:
    """The shard files a source names, checked to exist as regular files.

    Args:
      source: a converted dataset directory (has dataset.json), a glob, one shard
        file, or a list of shard files.
      split: the split read from a dataset directory.

    Returns:
      Shard paths: in dataset.json order, sorted for a glob, as given for a list.

    Raises:
      InputError: a directory without dataset.json or without the split, a split
        with no records, a glob that matches no file, a missing shard, an empty list.
      DataError: a shard that is not a regular file (reading a named pipe blocks
        forever).
    """
    if isinstance(source, (str, os.PathLike)):
        src = os.fspath(source)
        if os.path.isdir(src):
            info = metadata.load(src)
            if info.split(split).num_examples == 0:
                # Refused here, not left to tf.data: an empty file list reaches
                # TFRecordDataset as float32 and fails with a TypeError naming neither
                # the split nor the dataset; a split of empty shards trains on nothing.
                raise InputError(f"split {split!r} of {src} has no records")
            paths = info.shard_paths(split)
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
        raise InputError(f"shard not found: {_first_of(missing)}")
    for p in paths:
        shardfiles.shard_stat(p)
    return paths


def read_error(e: tf.errors.OpError, data_name: str) -> DataError:
    """A TF read error (corrupt shard, bad record) as a one-line `DataError`.

    Used by `infer`, and by `train`, whose reads fail inside `model.fit`: there TF puts
    "Graph execution error:" and node traces around the reader's message, so the line
    kept is the reader's own ("tfclassify: ...") when there is one, else the first.
    """
    lines = [x.strip() for x in (e.message or str(e)).strip().splitlines() if x.strip()]
    ours = [x for x in lines if "tfclassify:" in x]
    line = (ours or lines or [str(e)])[0]
    # Without the name of the TF function it ran in.
    return DataError(f"reading {data_name} failed: {_TF_FUNCTION.sub('', line)}")


# ---------------------------------------------------------------- the pipeline


def make_dataset(
    source: str | os.PathLike | Sequence[str | os.PathLike],
    options: ReadOptions | None = None,
    *,
    split: str | None = None,
    image_size: int | tuple[int, int] | None = None,
    batch_size: int | None = None,
    shuffle: bool | None = None,
    seed: int | None = None,
    as_supervised: bool = False,
    with_info: bool = False,
    stats: ReadStats | None = None,
) -> tf.data.Dataset | tuple[tf.data.Dataset, metadata.DatasetInfo]:
    """Batches of {"image", "label", "key"} from converted shards.

    The common settings are keywords, as in `tfds.load`; every other knob is a
    `ReadOptions` field. A keyword that is given (not None) wins over the same
    setting in `options`, and the result is validated once, as a `ReadOptions`:

        ds, info = tfclassify.make_dataset(
            "shards/", split="train", image_size=224, as_supervised=True, with_info=True
        )
        model.fit(ds, epochs=5)  # len(ds) is known: Keras shows progress per epoch

    Args:
      source: a converted dataset directory (reads the split), a glob, a shard
        path, or a list of shard paths. Shards must be uncompressed TFRecords of
        `tfclassify.core.schema` Examples.
      options: every knob; defaults to `ReadOptions()`.
      split: overrides `options.split` (read from a dataset directory only).
      image_size: overrides `options.image_size`: an int (square) or (height, width).
      batch_size: overrides `options.batch_size`.
      shuffle: True reads shards and records in a fresh order each pass (through a
        buffer of `options.shuffle_buffer`, or `SHUFFLE_BUFFER` records if that is
        0); False reads in file order. None: as `options` says when it is given;
        without it, the `train` split of a dataset directory is shuffled (as Keras
        shuffles what it trains on) and everything else is read in order.
      seed: overrides `options.seed`, the shuffle seed: the same seed gives the same
        order each run.
      as_supervised: yield `(image, label)` tuples, ready for `model.fit`.
      with_info: also return the dataset's `DatasetInfo` (class names, split sizes),
        read from the dataset.json beside the shards.
      stats: receives the skipped-record counts (see `ReadStats`). Pass one to
        report them; without it the pipeline still logs every skip. With
        skip_errors, a shard that holds fewer records than dataset.json lists adds
        the difference to `stats.skipped`, one that holds more to `stats.extra`.

    Returns:
      A dataset of dicts: "image" [B, H, W, 3] (or [B, 3, H, W] for NCHW) of
      `options.dtype`, "label" int64 [B] (-1 when a record has none; absent with
      `with_labels=False`), "key" string [B] (image/filename); (image, label)
      tuples with `as_supervised`. B < batch_size only for a last batch without
      `drop_remainder`. Where dataset.json gives every shard's record count (and
      without skip_errors), the number of batches is known: `len(ds)`. With
      `with_info`, a `(dataset, info)` pair.

    Raises:
      OptionsError: a bad keyword or option value; `as_supervised` without labels.
      InputError: the source names no readable shards (see `resolve_shards`);
        `with_info` for shards without a dataset.json.
      DataError: a shard that is not a regular file; unless `options.skip_errors`,
        a shard whose size differs from dataset.json's.
      tf.errors.InvalidArgumentError: while iterating, unless `options.skip_errors`:
        on the first bad record ("tfclassify: bad record <i> of <shard>: <reason>"),
        or, for shards whose record counts dataset.json gives, before the last
        batch ("<shard>: read <n> of <m> records"). Also, with or without
        skip_errors, on a read error that is not a bad record (a shard that
        vanished or cannot be read).
    """
    options = _with_keywords(
        source,
        options,
        split=split,
        image_size=image_size,
        batch_size=batch_size,
        shuffle=shuffle,
        seed=seed,
    )
    for name, flag in (("as_supervised", as_supervised), ("with_info", with_info)):
        if not isinstance(flag, bool):
            raise OptionsError(f"{name} must be True or False, got {flag!r}")
    if as_supervised and not options.with_labels:
        raise OptionsError("as_supervised=True yields (image, label): it needs with_labels=True")
    stats = stats or ReadStats()
    paths = resolve_shards(source, options.split)
    info = _dataset_info(source, paths) if with_info else None
    listed = listed_shards(paths)
    counts = None
    if listed is not None:
        _check_sizes(paths, listed, options.skip_errors)
        counts = [-1 if s is None else s.num_examples for s in listed]
    if counts is not None and -1 not in counts and not options.skip_errors:
        # Shards with a dataset.json: the plain pipeline, with bad records found at the
        # end as a per-shard shortfall. Several times faster than the per-record
        # bookkeeping of the exact path, which exact positions (skip_errors) and shards
        # without known counts need.
        ds = _fast_dataset(paths, counts, options)
    else:
        # With skip_errors, each shard's count is checked as it ends: a shortfall or
        # excess that no bad record explains is counted and logged too.
        ds = exact_dataset(paths, options, stats, counts if options.skip_errors else None)
    if as_supervised:
        ds = ds.map(plain(lambda b: (b["image"], b["label"])))
    if options.prefetch:
        # Prefetch last, so the consumer's step overlaps preparing the next batch.
        ds = ds.prefetch(options.prefetch)
    ds = ds.with_options(tf_data_options(options))
    return (ds, info) if with_info else ds


def _with_keywords(
    source: str | os.PathLike | Sequence[str | os.PathLike],
    options: ReadOptions | None,
    *,
    shuffle: bool | None,
    **fields: object,
) -> ReadOptions:
    """`options` (or the defaults) with the keywords given applied: validated once,
    by `ReadOptions`, so a bad keyword is the same OptionsError as a bad field."""
    if options is not None and not isinstance(options, ReadOptions):
        raise OptionsError(f"options must be a ReadOptions or None, got {options!r}")
    if shuffle not in (None, True, False):
        raise OptionsError(f"shuffle must be None, True or False, got {shuffle!r}")
    base = options or ReadOptions()
    given = {k: v for k, v in fields.items() if v is not None}
    if shuffle is None and options is None:
        split = given.get("split", base.split)
        is_dir = isinstance(source, (str, os.PathLike)) and os.path.isdir(source)
        shuffle = is_dir and split == _TRAIN_SPLIT
    if shuffle is not None:
        given["shuffle_files"] = shuffle
        given["shuffle_buffer"] = (base.shuffle_buffer or SHUFFLE_BUFFER) if shuffle else 0
    return dataclasses.replace(base, **given) if given else base


def _dataset_info(
    source: str | os.PathLike | Sequence[str | os.PathLike], paths: Sequence[str]
) -> metadata.DatasetInfo:
    """The DatasetInfo of a dataset directory, or of the dataset.json beside the shards."""
    if isinstance(source, (str, os.PathLike)) and os.path.isdir(source):
        return metadata.load(os.fspath(source))
    dirs = {os.path.dirname(os.path.abspath(p)) for p in paths}
    directory = dirs.pop()
    if dirs or not os.path.isfile(os.path.join(directory, metadata.METADATA_FILE)):
        raise InputError(
            f"with_info=True needs a {metadata.METADATA_FILE} beside the shards; "
            f"{_first_of(list(paths))} has none (pass the dataset directory, or with_info=False)"
        )
    return metadata.load(directory)


# ---------------------------------------------------------------- the fast default path


def listed_shards(paths: Sequence[str]) -> list[metadata.ShardInfo | None] | None:
    """What the dataset.json beside the shards says about each (None for a file it
    does not list), or None when there is no dataset.json beside them.

    Known counts let the default pipeline skip TF's per-record error plumbing and
    still fail loudly: whatever could not be read shows up as a shortfall. A file
    that dataset.json does not list (a stray shard a glob matched) is read, with a
    warning: its records cannot be checked.
    """
    dirs = {os.path.dirname(os.path.abspath(p)) for p in paths}
    if len(dirs) != 1:
        return None
    directory = dirs.pop()
    json_path = os.path.join(directory, metadata.METADATA_FILE)
    if not os.path.isfile(json_path):
        return None
    try:
        by_path = metadata.load(directory).shards_by_path()
    except (InputError, OSError) as e:  # a foreign or damaged dataset.json
        logging.warning("tfclassify: reading without record counts: %s", e)
        return None
    listed = [by_path.get(os.path.abspath(p)) for p in paths]
    strays = [p for p, s in zip(paths, listed, strict=True) if s is None]
    if strays:
        logging.warning(
            "tfclassify: %s: not listed in %s (a stray shard?); read without a record count check",
            _first_of(strays),
            json_path,
        )
    return listed


def _check_sizes(
    paths: Sequence[str], listed: Sequence[metadata.ShardInfo | None], skip_errors: bool
) -> None:
    """Compares each listed shard's size with dataset.json before reading: a shard
    emptied, cut, or with records dropped or added is structurally damaged.

    Raises:
      DataError: without `skip_errors`, naming the damaged shards. With it, each is
        logged, and read: its record count is checked when it ends.
    """
    damaged = [
        f"{p}: {size} bytes, dataset.json lists {s.num_bytes}"
        for p, s in zip(paths, listed, strict=True)
        if s is not None and (size := os.path.getsize(p)) != s.num_bytes
    ]
    if not damaged:
        return
    if not skip_errors:
        raise DataError(
            f"damaged shard {_first_of(damaged)} (check it with python -m tfclassify.verify); "
            "pass skip_errors=True (infer: --skip_errors) to read, count and log what is left"
        )
    for line in damaged:
        logging.warning("tfclassify: damaged shard %s; reading what is left", line)


def _first_of(items: Sequence[str]) -> str:
    """The first item, and how many more there are: one line however many."""
    return items[0] + (f" (and {len(items) - 1} more)" if len(items) > 1 else "")


def _fast_dataset(
    paths: Sequence[str], counts: Sequence[int], options: ReadOptions
) -> tf.data.Dataset:
    """The default pipeline: plain tf.data stages, no per-record bookkeeping.

    Bad records (CRC, truncation, undecodable image) are dropped where they fail and
    found at the end by comparing records per shard with dataset.json: the last
    batch is released only if they agree, else an error names each short shard.
    """
    spec = schema.feature_spec(with_label=options.with_labels)

    def parse(serialized: tf.Tensor, shard: tf.Tensor):
        f = tf.io.parse_example(serialized, spec)
        need, ratio = geometry(tf.stack([f[schema.HEIGHT], f[schema.WIDTH]], axis=1), options)
        out = {"encoded": f[schema.ENCODED], "key": f[schema.FILENAME]}
        if options.with_labels:
            out["label"] = f[schema.LABEL]
        return out, need, ratio, tf.fill(tf.shape(serialized), shard)

    def read(path: tf.Tensor, shard: tf.Tensor) -> tf.data.Dataset:
        # Opened here, in this function, rather than through `records.tfrecords`:
        # two fewer tf.data functions to instantiate at every iterator start. A shard
        # that cannot be opened fails once and is reported short at the end; a CRC
        # error ends this shard only, and is reported the same way.
        records = tf.data.TFRecordDataset(
            opened(path), buffer_size=buffer_size(options.reader_buffer_kb * 1024)
        ).ignore_errors(log_warning=True)
        # Parse and plan the geometry a few records at a time (the tf.data guide's
        # "vectorized mapping"): a handful of ops per group instead of per image. A
        # record that does not parse drops its group, which the count check reports.
        group = _PARSE_BATCH * options.block_length
        parsed = records.batch(group).map(plain(lambda r: parse(r, shard)))
        return parsed.ignore_errors(log_warning=True)

    shards = (list(paths), tf.range(len(paths), dtype=tf.int64))
    ds = interleave_shards(shards, read, options, grouped=True)

    def decode(out: dict[str, tf.Tensor], need: tf.Tensor, ratio: tf.Tensor, shard: tf.Tensor):
        # A converted dataset stores every image's size: `need` is always known.
        image = decode_placed(out["encoded"], need, ratio, options)
        return {k: v for k, v in out.items() if k != "encoded"} | {"image": image}, shard

    # Decode + resize per image, in parallel: the expensive stage.
    ds = ds.map(plain(decode), **parallel(options.map_parallelism, options.deterministic))
    # Logged as it happens: a consumer that stops early (take, max_images) never
    # reaches the count check at the end, and must not lose a record unseen.
    ds = ds.ignore_errors(log_warning=True)
    # Batch after the per-image work: every image now has the same static shape.
    # The shard index rides along as a [B] vector, so counting costs one op a batch.
    ds = ds.batch(options.batch_size)
    total = sum(counts)
    batches = total // options.batch_size
    if not options.drop_remainder and total % options.batch_size:
        batches += 1
    ds = _check_counts(ds, paths, counts, options.batch_size, batches)
    if options.drop_remainder or options.data_format == "NCHW":
        ds = ds.map(plain(functools.partial(_finish, options=options)))
    # The batch count dataset.json promises: `len(ds)`, and Keras's progress and epoch
    # end without `steps_per_epoch`. A stream that differs fails the count check
    # before TF's own assertion could: that one names no shard.
    return ds.apply(tf.data.experimental.assert_cardinality(batches))


def _finish(batch: dict[str, tf.Tensor], options: ReadOptions) -> dict[str, tf.Tensor]:
    """The static batch size of `drop_remainder`, and the NCHW layout."""
    if options.drop_remainder:
        size = options.batch_size
        batch = {k: tf.ensure_shape(v, [size, *v.shape[1:]]) for k, v in batch.items()}
    return finish_batch(batch, options)


def _check_counts(
    ds: tf.data.Dataset,
    paths: Sequence[str],
    counts: Sequence[int],
    batch_size: int,
    batches: int,
) -> tf.data.Dataset:
    """Counts records per shard, a batch at a time, and raises naming every shard
    whose count differs from dataset.json's once every record has been read (a shard
    that gives more than listed, as soon as it does). Delivers the first `batches`.

    Each batch is held back by one step, so the last is released only after the
    check: a consumer that stops at the promised batch count (Keras with a known
    cardinality) still hears of a shortfall. A short last batch is counted either
    way, delivered only when `batches` includes it (not with drop_remainder).
    """
    n = len(paths)
    expected = tf.constant(list(counts), tf.int64)
    names = tf.constant(list(paths))
    spec = ds.element_spec[0]
    empty = {k: tf.zeros([0, *s.shape[1:]], s.dtype) for k, s in spec.items()}
    # One empty batch marks the end of the stream (no real batch is empty).
    ds = ds.concatenate(tf.data.Dataset.from_tensors((empty, tf.zeros([0], tf.int64))))

    def step(state, item):
        seen, held = state
        out, shard = item
        seen = seen + tf.math.bincount(shard, minlength=n, maxlength=n, dtype=tf.int64)
        # Every record has been read at the end marker or a short (so, last) batch;
        # a shard that gave more than listed is wrong as soon as it does.
        finished = tf.size(shard) < batch_size
        bad = tf.where(finished, tf.not_equal(seen, expected), seen > expected)
        # gather, not boolean_mask: the same result, for a tenth of the tracing time.
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
                "; pass skip_errors=True (infer: --skip_errors) to skip them and log each one",
            ]
        )
        # With string data, Assert is one op, not a cond: no branch functions to build.
        ok = tf.debugging.Assert(tf.logical_not(tf.reduce_any(bad)), [text])
        with tf.control_dependencies([ok]):
            released = {k: tf.identity(v) for k, v in held.items()}
        return (seen, out), released

    ds = ds.scan((tf.zeros([n], tf.int64), empty), plain(step))
    # The first step releases nothing (the empty batch it starts with); a short
    # batch beyond `batches` (drop_remainder) or the marker's step is never taken.
    return ds.skip(1).take(batches)
