"""Batch inference over a converted dataset in three modes with one API.

The mode changes *when* work happens, never what is computed:

* `sequential` - read one record, decode it, predict it (batch of 1), repeat. Nothing
  overlaps: the baseline every tutorial loop starts from.
* `batch` - read and decode `batch_size` records into a numpy batch, then predict
  it. Model calls are batched but input and compute still alternate.
* `pipelined` - parallel decode + prefetch produce batch N+1 on the CPU while the
  model computes batch N; on a GPU, `prefetch_to_device=True` also copies the next
  batch to the device ahead of time. The model stays outside tf.data (a
  `tf.function` with a fixed signature, traced once).

On a dataset directory all three read through `make_dataset` (the first two with
no parallel stage and no prefetch), so they read the same records in the same
order (`max_images` covers the same images, rows come out alike), decode them with
the same `tfclassify.reading.preprocess` code, and follow the reader's bad-record rules: an
error naming the shard by default, a counted and logged skip with `skip_errors`.
All call the same compiled model, so predictions agree (to float tolerance across
batch sizes).

Usage:
  result = infer("model_dir", "dataset_dir", InferOptions(mode="pipelined"))
  print(result)                   # count, accuracy, images/s, threads in effect
  python -m tfclassify.infer --model MODEL --data DIR --output preds.csv
  python -m tfclassify.infer --describe MODEL
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
from absl import logging

from tfclassify.core import metadata
from tfclassify.core.errors import InputError, OptionsError
from tfclassify.core.options import READ_DTYPES, InferOptions, ReadOptions
from tfclassify.core.progress import Progress, given_or_new
from tfclassify.inference.predictions import InferResult, write_predictions
from tfclassify.models import runtime
from tfclassify.models.predictor import Predictor

__all__ = ["PreparedModel", "infer", "open_dataset", "predict_shards", "prepare"]

# One batch: images (array or tensor), int64 labels (-1 = unknown), keys (str).
Batch = tuple[Any, np.ndarray, list[str]]


# ---------------------------------------------------------------- reading

# What the non-overlapping modes change in the reader: every stage runs in the
# loop's own thread when the loop asks for the next batch, and nothing runs ahead
# (graph rewrites could inject a prefetch). The records, their order and the
# bad-record rules stay the reader's, so every mode reads the same images.
_NO_OVERLAP = {
    "interleave_parallelism": None,
    "map_parallelism": None,
    "prefetch": 0,
    "graph_rewrites": False,
}


def _default_split(info: metadata.DatasetInfo) -> str:
    return "validation" if "validation" in info.splits else "train"


_DEFAULT_NORMALIZE = ReadOptions().normalize


def _pixel_settings(predictor: Predictor, read: ReadOptions) -> dict[str, str]:
    """The read `dtype` (and, for integer models, `normalize`) the model's input needs.

    Float models get images in their own dtype (float64: float32, cast by the
    predictor) with the caller's normalization. Integer models take raw pixel values
    0-255: a normalized image cast to an integer type truncates to ~0, so they read
    `normalize='none'` as uint8 (rounded once; the predictor widens it exactly). That
    replaces the default normalization; a `read` asking for another one is refused
    rather than silently overridden.

    Raises:
      InputError: an input type that cannot hold pixel values (int8, bool, ...).
      OptionsError: an integer model with a `read` that asks for a normalization.
    """
    import tensorflow as tf

    dtype = tf.as_dtype(predictor.input_dtype)
    if dtype.is_floating:
        return {"dtype": dtype.name if dtype.name in READ_DTYPES else "float32"}
    if not dtype.is_integer or dtype.max < 255:
        raise InputError(
            f"{predictor.path} takes {dtype.name} input, which cannot hold images: "
            "tfclassify feeds float images or raw pixel values 0-255 (uint8 or wider)"
        )
    if read.normalize not in ("none", _DEFAULT_NORMALIZE):
        raise OptionsError(
            f"{predictor.path} takes {dtype.name} input (raw pixel values 0-255) but "
            f"read normalize={read.normalize!r} would be truncated to ~0 by the cast; "
            "set read=ReadOptions(normalize='none', dtype='uint8'), or leave normalize out"
        )
    return {"dtype": "uint8", "normalize": "none"}


def _read_options(
    options: InferOptions,
    split: str,
    image_size: tuple[int, int],
    predictor: Predictor,
    data_format: str,
) -> ReadOptions:
    """The caller's preprocessing (`options.read`), with what the model and mode dictate."""
    base = options.read or ReadOptions()
    return dataclasses.replace(
        base,
        split=split,
        image_size=image_size,
        batch_size=1 if options.mode == "sequential" else options.batch_size,
        data_format=data_format,
        with_labels=True,
        **_pixel_settings(predictor, base),
        **({} if options.mode == "pipelined" else _NO_OVERLAP),
    )


def _rebatched(ds: Any, mode: str, batch_size: int) -> Any:
    """A caller's tf.data pipeline of batched {"image","label","key"} dicts, rebatched
    to the mode's batch size.

    Sequential and batch modes add no prefetch, but cannot remove read-ahead the
    caller's pipeline already has.
    """
    import tensorflow as tf

    ds = ds.unbatch().batch(1 if mode == "sequential" else batch_size)
    return ds.prefetch(tf.data.AUTOTUNE) if mode == "pipelined" else ds


def _in_model_layout(ds: Any, predictor: Predictor) -> Any:
    """A caller's batches in the model's layout: channels-last images (`make_dataset`'s
    default) are transposed to NCHW for a model that takes channels-first input, in
    the pipeline (on the CPU, as all input work); batches already in the model's
    layout, or whose channels axis cannot be told from their shape, pass as they are.
    """
    import tensorflow as tf

    spec = ds.element_spec.get("image") if isinstance(ds.element_spec, dict) else None
    if spec is None or not predictor.expects_channels_first or spec.shape.rank != 4:
        return ds
    channels = predictor.input_shape[0]
    if spec.shape[-1] != channels or spec.shape[1] == channels:
        return ds
    return ds.map(lambda e: {**e, "image": tf.transpose(e["image"], [0, 3, 1, 2])})


def _quantized(ds: Any, quantization: Any, pipelined: bool) -> Any:
    """Float image batches -> the model's integers, in the tf.data graph: pipelined, on
    tf.data's threads ahead of the model, as the rest of the input work."""
    import tensorflow as tf

    def quantize(e: dict[str, Any]) -> dict[str, Any]:
        return {**e, "image": quantization.quantize(e["image"])}

    if not pipelined:
        return ds.map(quantize)
    return ds.map(quantize, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def _tensor_batches(ds: Any, as_numpy: bool = False) -> Iterator[Batch]:
    """(images, labels, keys) per element; a missing label is -1, a missing key the index.

    Pipelined mode keeps images as tensors (possibly already on the GPU); the
    non-overlapping modes hand the model numpy arrays, as a plain loop would.
    """
    seen = 0
    for e in ds:
        images = e["image"].numpy() if as_numpy else e["image"]
        n = int(images.shape[0])
        labels = e["label"].numpy().astype(np.int64) if "label" in e else np.full([n], -1, np.int64)
        if "key" in e:
            # A file name that is not UTF-8 keeps its bytes as surrogates, as os.listdir
            # and the record parser give them; the writers put them back (see
            # `write_predictions`).
            keys = [k.decode("utf-8", "surrogateescape") for k in e["key"].numpy()]
        else:
            keys = [str(i) for i in range(seen, seen + n)]
        seen += n
        yield images, labels, keys


@dataclasses.dataclass
class _Input:
    """What a run reads: its batches, and what the reading reports."""

    batches: Iterator[Batch]
    name: str
    tf_data_threads: int | None  # the private pool the pipeline runs with; None: shared
    stats: Any = None  # reading.ReadStats for converted shards; None for a caller's pipeline

    @property
    def skipped_records(self) -> int | None:
        return None if self.stats is None else self.stats.skipped

    @property
    def extra_records(self) -> int | None:
        return None if self.stats is None else self.stats.extra

    @property
    def bad_records(self) -> list[Any] | None:
        return None if self.stats is None else self.stats.bad_records


def _input(
    data: Any, read_options: ReadOptions | None, options: InferOptions, predictor: Predictor
) -> _Input:
    """The pipeline every mode reads, in the model's layout; built now, read when
    iterated.

    Converted shards (`data`: a dataset directory or a list of shard paths, with
    `read_options`) go through `make_dataset` in every mode, so the records, their
    order and the bad-record rules (an error naming the shard, or with `skip_errors`
    a skip that is counted and logged) are the reader's in all three. Without
    `read_options`, `data` is a caller's tf.data pipeline.
    """
    from tfclassify.reading import dataset as reader

    stats = None
    if read_options is not None:
        stats = reader.ReadStats()
        ds = reader.make_dataset(data, read_options, stats=stats)
        name = data if isinstance(data, str) else _shards_name(data)
    else:
        ds = _rebatched(_in_model_layout(data, predictor), options.mode, options.batch_size)
        name = "<tf.data.Dataset>"
    # Read back from the pipeline: the pool in effect, set by `read` or by the caller.
    pool = ds.options().threading.private_threadpool_size or None
    pipelined = options.mode == "pipelined"
    if predictor.input_quantization is not None:
        ds = _quantized(ds, predictor.input_quantization, pipelined)
    if pipelined and options.prefetch_to_device:
        ds = runtime.prefetch_to_device(ds, predictor.device)  # the last transformation
    return _Input(_tensor_batches(ds, as_numpy=not pipelined), name, pool, stats)


def _shards_name(shards: Sequence[str]) -> str:
    more = len(shards) - 1
    return shards[0] + (f" (and {more} more)" if more else "")


def _checked(batches: Iterator[Batch], data_name: str) -> Iterator[Batch]:
    """Read errors (corrupt shard, bad record) become one-line `DataError`s."""
    import tensorflow as tf

    from tfclassify.reading.dataset import read_error

    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except tf.errors.OpError as e:
            raise read_error(e, data_name) from e
        yield batch


# ---------------------------------------------------------------- running


def _class_names(predictor: Predictor, dataset_labels: tuple[str, ...] | None) -> tuple[str, ...]:
    n = predictor.num_classes
    if predictor.labels is not None:
        return predictor.labels
    if dataset_labels is not None and (n is None or len(dataset_labels) == n):
        return tuple(dataset_labels)
    if n is None:
        raise InputError(
            f"{predictor.path}: the model's class count is unknown and it has no labels.txt"
        )
    return tuple(str(i) for i in range(n))


def _label_remap(
    class_names: tuple[str, ...], dataset_labels: tuple[str, ...] | None, model_named: bool
) -> np.ndarray | None:
    """Dataset label id -> model output index, when both name their classes differently.

    Dataset classes the model does not know count as unlabeled; when that leaves
    images out of the accuracy, a warning says why, since a model run on the wrong
    dataset otherwise just reports "accuracy: n/a". `model_named`: the model has a
    labels.txt (else `class_names` are its output indices).
    """
    if dataset_labels is None or tuple(dataset_labels) == tuple(class_names):
        return None
    index = {n: i for i, n in enumerate(class_names)}
    unknown = [n for n in dataset_labels if n not in index]
    counts = f"the model has {len(class_names)} classes and the dataset {len(dataset_labels)}"
    if unknown and not model_named:
        # Its classes are output indices: the dataset's names cannot be matched to them.
        logging.warning(
            "%s, and no labels.txt beside the model names its classes, so the images count "
            "as unlabeled (no accuracy)",
            counts,
        )
    elif unknown:
        logging.warning(
            "%s: %d of the dataset's %d classes are not among the model's classes, so their "
            "images count as unlabeled (no accuracy): %s",
            counts,
            len(unknown),
            len(dataset_labels),
            ", ".join(unknown[:10]) + (" ..." if len(unknown) > 10 else ""),
        )
    return np.asarray([index.get(n, -1) for n in dataset_labels], np.int64)


def _resolve_input(predictor: Predictor, options: InferOptions) -> tuple[tuple[int, int], str]:
    """(image_size, data_format) from the model, checked against the options and device."""
    model_fmt = predictor.data_format
    fmt = options.data_format or model_fmt
    if fmt != model_fmt:
        raise OptionsError(
            f"data_format {fmt} requested but {predictor.path} takes {model_fmt} input "
            f"of shape {predictor.input_shape}"
        )
    size = _image_size(predictor, options)
    if fmt == "NCHW" and not runtime.is_gpu(predictor.device):
        _check_runs_channels_first(predictor, size)
    return size, fmt


def _check_runs_channels_first(predictor: Predictor, size: tuple[int, int]) -> None:
    """A model that declares channels-first input gets NCHW batches, on a CPU too,
    if it runs there. Whether it does is this probe's verdict, on one blank image: a
    model without convolutions (or that transposes first) does; channels-first
    convolutions run on oneDNN's CPU kernels but not on Eigen's (NHWC-only), so
    they depend on the host's TF. Where it fails, it fails here as one clear line,
    not at the first batch deep in TF."""
    import tensorflow as tf

    try:
        # A blank image through the model's call, which leaves the logits/probabilities
        # decision to real images.
        predictor.warmup(size)
    except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError) as e:
        first = (e.message or str(e)).strip().splitlines()[0]
        onednn = "" if runtime.onednn_enabled() else " or try oneDNN's CPU kernels (onednn=True)"
        raise OptionsError(
            f"{predictor.path} takes channels-first (NCHW) input and cannot run on "
            f"{predictor.device} ({first}); run it on a GPU (device='gpu'){onednn}",
            settings={"device": "gpu", "onednn": True},
        ) from None


def _image_size(predictor: Predictor, options: InferOptions) -> tuple[int, int]:
    size = predictor.image_size
    if options.image_size is not None:
        if size is not None and options.image_size != size:
            raise OptionsError(
                f"image_size {options.image_size} requested but {predictor.path} takes "
                f"{size[0]}x{size[1]} images"
            )
        size = options.image_size
    if size is None:
        raise OptionsError(f"{predictor.path} accepts any image size; pass image_size")
    return size


def open_dataset(
    data: str | os.PathLike, split: str | None = None
) -> tuple[metadata.DatasetInfo, str]:
    """A converted dataset's metadata, and the split `infer` reads from it.

    Args:
      data: the dataset directory (has dataset.json).
      split: the split to read; None: validation if the dataset has one, else train.

    Raises:
      InputError: no readable dataset.json, or no such split (the message lists them).
    """
    info = metadata.load(os.fspath(data))
    split = split or _default_split(info)
    info.split(split)  # clear error listing the available splits
    return info, split


def _open_data(data: Any, options: InferOptions) -> tuple[metadata.DatasetInfo | None, str | None]:
    """The dataset's metadata and split for a directory; (None, None) for a tf.data.Dataset."""
    if isinstance(data, (str, os.PathLike)):
        return open_dataset(data, options.split)
    if not hasattr(data, "element_spec"):
        raise InputError(
            f"data must be a converted dataset directory or a tf.data.Dataset, got {type(data)}"
        )
    if options.split is not None:
        raise OptionsError("split applies to a dataset directory, not a tf.data.Dataset")
    return None, None


def _load(model: str, options: InferOptions) -> Predictor:
    return Predictor.load(
        model,
        signature=options.signature,
        device=options.device,
        outputs=options.outputs,
        freeze=options.freeze,
        runtime=options.runtime,
        precision=options.precision,
        threads=options.threads.intra_op,
    )


def _predict_all(
    predictor: Predictor,
    source: _Input,
    max_images: int | None,
    num_classes: int,
    progress: Progress | None,
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Keys, int64 labels and probabilities of the first `max_images` images (all if
    None); `progress` counts them as they are predicted."""
    keys: list[str] = []
    labels: list[np.ndarray] = []
    probs: list[np.ndarray] = []
    limit = max_images or math.inf
    for images, batch_labels, batch_keys in _checked(source.batches, source.name):
        room = limit - len(keys)
        if room < len(batch_keys):
            n = int(room)
            images, batch_labels, batch_keys = images[:n], batch_labels[:n], batch_keys[:n]
        if len(batch_keys):
            probs.append(predictor.predict(images))
            labels.append(batch_labels)
            keys.extend(batch_keys)
            if progress is not None:
                progress.update(len(batch_keys))
        if len(keys) >= limit:
            break
    return (
        keys,
        np.concatenate(labels) if labels else np.zeros((0,), np.int64),
        np.concatenate(probs) if probs else np.zeros((0, num_classes), np.float32),
    )


@dataclasses.dataclass(eq=False)
class PreparedModel:
    """A loaded model with what every read through it needs, decided once.

    `prepare` builds it; `infer` runs one over a whole dataset, `predict_shards` over
    some of its shards (a Beam worker keeps one per process and calls it per shard).

    Attributes:
      predictor: the loaded model, traced and warmed up.
      options: the run's options (threads, batch size, top-k, read settings...).
      image_size / data_format: what the reader gives the model.
      class_names: the model's output classes by index (see `InferResult`).
      dataset_labels: the dataset's label names by label id, or None.
    """

    predictor: Predictor
    options: InferOptions
    image_size: tuple[int, int]
    data_format: str
    class_names: tuple[str, ...]
    dataset_labels: tuple[str, ...] | None
    _remap: np.ndarray | None = dataclasses.field(repr=False)

    @property
    def top_k(self) -> int:
        """Classes each prediction row lists: `options.top_k`, clipped to the classes."""
        return min(self.options.top_k, len(self.class_names))

    def model_ids(self, labels: np.ndarray) -> np.ndarray:
        """The dataset's label ids as the model's class indices (int64; -1: unlabeled,
        or a class the model does not have)."""
        remap = self._remap
        if remap is not None:
            labels = np.where(labels >= 0, remap[np.clip(labels, 0, len(remap) - 1)], -1)
        return np.where(labels < len(self.class_names), labels, -1).astype(np.int64)

    def read_options(self, split: str | None = None) -> ReadOptions:
        """How to read `split` of a converted dataset for this model (None: the read
        options' own split, which a list of shards does not use). The input was
        resolved once, in `prepare`."""
        split = split or (self.options.read or ReadOptions()).split
        return _read_options(self.options, split, self.image_size, self.predictor, self.data_format)


def read_options_for(
    predictor: Predictor, options: InferOptions, split: str | None = None
) -> ReadOptions:
    """How `infer` reads `split` of a converted dataset for `predictor` with `options`
    (None: the read options' own split): the image size, layout and pixel type the
    model takes, the mode's parallelism and the caller's preprocessing. Resolves
    the model's input each call (`PreparedModel.read_options` does it once).

    Raises:
      OptionsError / InputError: an image size or layout the model cannot take.
    """
    split = split or (options.read or ReadOptions()).split
    image_size, data_format = _resolve_input(predictor, options)
    return _read_options(options, split, image_size, predictor, data_format)


def prepare(
    model: str | Predictor,
    options: InferOptions | None = None,
    dataset_labels: Sequence[str] | None = None,
) -> PreparedModel:
    """Loads `model` (unless given loaded) and decides what reading it needs, once.

    Applies `options.threads` first (before the model load starts TF's runtime),
    checks the image size and layout, names the classes, and traces the model call.

    Args:
      model: a model path (see `Predictor.load`) or a loaded `Predictor`.
      options: as for `infer`.
      dataset_labels: the label names of the dataset it will read (its dataset.json),
        to name classes and map labels when the model has no labels.txt; None for
        data without them.

    Raises:
      InputError / OptionsError: as `infer` raises them for the model and options.
    """
    options = options or InferOptions()
    labels = None if dataset_labels is None else tuple(dataset_labels)
    # Threads before anything touches TF's runtime (model load initialises it).
    runtime.apply_threads(options.threads)
    if options.mixed_precision:  # before the model's graph is built
        runtime.enable_inference_mixed_precision(runtime.resolve_device(options.device))
    predictor = model if isinstance(model, Predictor) else _load(model, options)
    image_size, data_format = _resolve_input(predictor, options)
    _pixel_settings(predictor, options.read or ReadOptions())  # refused before the trace
    class_names = _class_names(predictor, labels)
    remap = _label_remap(class_names, labels, predictor.labels is not None)
    predictor.warmup(image_size)  # trace once outside the timed loop
    return PreparedModel(predictor, options, image_size, data_format, class_names, labels, remap)


def predict_shards(
    prepared: PreparedModel,
    shards: Sequence[str],
    split: str | None = None,
    *,
    skip_errors: bool | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> InferResult:
    """Runs a prepared model over some shards of a converted dataset, as `infer` runs
    it over a whole split: the same reader, batches and rows.

    Args:
      prepared: from `prepare`, with the dataset's labels.
      shards: shard paths, read in this order.
      split: the split they belong to (reported in the result).
      skip_errors: overrides the read options' `skip_errors`: True skips, counts and
        names each bad record (`InferResult.bad_records`); False raises on the first.
      clock: seconds counter (injectable for tests).

    Raises:
      InputError: a shard that is missing.
      DataError: a damaged shard or bad record (unless skipped); a read error that is
        not a record's (a shard that cannot be read) whether or not.
    """
    read = prepared.read_options(split)
    if skip_errors is not None:
        read = dataclasses.replace(read, skip_errors=skip_errors)
    source = _input(list(shards), read, prepared.options, prepared.predictor)
    return _run(prepared, source, split, clock)


def _run(
    prepared: PreparedModel,
    source: _Input,
    split: str | None,
    clock: Callable[[], float],
    progress: Progress | None = None,
) -> InferResult:
    """Predicts every image `source` gives (up to `max_images`): the timed loop."""
    predictor, options, class_names = prepared.predictor, prepared.options, prepared.class_names
    num_classes = len(class_names)
    start = clock()
    limit = options.max_images
    keys, true_ids, probs = _predict_all(predictor, source, limit, num_classes, progress)
    seconds = clock() - start

    true_ids = prepared.model_ids(true_ids)
    # Stable sort: ties resolve to the lower class index in every mode.
    order = np.argsort(-probs, axis=1, kind="stable")[:, : prepared.top_k]
    return InferResult(
        mode=options.mode,
        device=predictor.device,
        threads={**runtime.effective_threads(), "tf_data_threads": source.tf_data_threads},
        model=predictor.path,
        data=source.name,
        split=split,
        batch_size=1 if options.mode == "sequential" else options.batch_size,
        class_names=class_names,
        keys=keys,
        true_ids=true_ids,
        topk_ids=order.astype(np.int64),
        topk_probs=np.take_along_axis(probs, order, axis=1),
        probabilities=probs if options.keep_probabilities else None,
        seconds=seconds,
        frozen=predictor.freeze,
        skipped_records=source.skipped_records,
        extra_records=source.extra_records,
        mixed_precision=options.mixed_precision,
        runtime=predictor.runtime,
        precision=predictor.precision,
        model_threads=predictor.threads,
        bad_records=source.bad_records,
    )


def infer(
    model: str | Predictor,
    data: Any,
    options: InferOptions | None = None,
    *,
    clock: Callable[[], float] = time.perf_counter,
    progress: Progress | None = None,
) -> InferResult:
    """Runs a classifier over a dataset split and reports predictions, accuracy and speed.

    Args:
      model: a model path (see `Predictor.load`) or a loaded `Predictor`.
      data: a converted dataset directory, or a `tf.data.Dataset` of batched dicts
        {"image", "label" (-1 unknown), "key"}, images channels-last (NHWC, as
        `make_dataset` gives them; transposed for a channels-first model) or in the
        model's own layout.
      options: mode, batch size, device, threads, output file...
      clock: seconds counter (injectable for tests).
      progress: a bar of the caller's that counts the images predicted (its total set
        if it has none); None: one of its own, `infer MODE` (off with `options.quiet`).

    Returns:
      An `InferResult`; if `options.output` is set, the predictions file and
      `summary.json` beside it have been written.

    Raises:
      InputError: missing/unusable model or dataset, unknown split or signature.
      OptionsError: bad options, TF already initialised with other threads, a
        channels-first model whose ops the CPU does not run.
      OutputError: the output cannot be written.
    """
    options = options or InferOptions()
    info, split = _open_data(data, options)  # without TF: a bad path fails in a blink
    prepared = prepare(model, options, info.labels if info is not None else None)
    total = None
    if info is not None:
        source = _input(info.directory, prepared.read_options(split), options, prepared.predictor)
        total = min(info.split(split).num_examples, options.max_images or math.inf)
    else:
        source = _input(data, None, options, prepared.predictor)
    desc = f"infer {options.mode}"
    with given_or_new(progress, desc, total, quiet=options.quiet) as bar:
        result = _run(prepared, source, split, clock, bar)
    if options.output:
        write_predictions(result, options.output)
    return result
