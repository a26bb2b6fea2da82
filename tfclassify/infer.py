"""Batch inference over a converted dataset in three modes with one API.

The mode changes *when* work happens, never what is computed:

* `sequential` - read one record, decode it, predict it (batch of 1), repeat. Nothing
  overlaps: the baseline every tutorial loop starts from.
* `batch` - read and decode `batch_size` records into a numpy batch, then predict
  it. Model calls are batched but input and compute still alternate.
* `pipelined` - `make_dataset` (parallel decode + prefetch) produces batch N+1 on
  the CPU while the model computes batch N; on a GPU, `prefetch_to_device=True` also
  copies the next batch to the device ahead of time. The model stays outside
  tf.data (a `tf.function` with a fixed signature, traced once).

All three decode with the same `tfclassify.preprocess` function and call the same
compiled model, so predictions agree (to float tolerance across batch sizes).

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
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from tfclassify import _callable, cli, metadata, runtime
from tfclassify.errors import DataError, InputError, OptionsError
from tfclassify.options import INFER_MODES, InferOptions
from tfclassify.predictions import InferResult, write_predictions
from tfclassify.predictor import Predictor, describe

__all__ = [
    "InferOptions",
    "InferResult",
    "describe",
    "infer",
    "main",
    "write_predictions",
]

# One batch: images (array or tensor), int64 labels (-1 = unknown), keys (str).
Batch = tuple[Any, np.ndarray, list[str]]


# ---------------------------------------------------------------- reading


def _default_split(info: metadata.DatasetInfo) -> str:
    return "validation" if "validation" in info.splits else "train"


def _read_options(
    options: InferOptions,
    split: str,
    image_size: tuple[int, int],
    predictor: Predictor,
    data_format: str,
) -> Any:
    """The caller's preprocessing (`options.read`), with what the model dictates."""
    from tfclassify.options import READ_DTYPES, ReadOptions

    # Float inputs are produced in the model's dtype; others (uint8/int models) are
    # read as float32 and cast by the predictor, which keeps `normalize` meaningful.
    dtype = predictor.input_dtype
    if dtype not in READ_DTYPES or dtype == "uint8":
        dtype = "float32"
    base = options.read or ReadOptions()
    return dataclasses.replace(
        base,
        split=split,
        image_size=image_size,
        batch_size=options.batch_size,
        dtype=dtype,
        data_format=data_format,
        with_labels=True,
        private_threadpool_size=(options.threads.tf_data_threads or base.private_threadpool_size),
    )


def _record_stream(
    info: metadata.DatasetInfo, read_options: Any
) -> Iterator[tuple[np.ndarray, int, str]]:
    """One (image, label, key) at a time, decoded on demand: no read-ahead, no overlap.

    The parse + decode graph is built and traced here, before the caller's clock
    starts; records are read only when the returned iterator is advanced.
    """
    import tensorflow as tf

    from tfclassify import preprocess, schema, tfdata

    paths = info.shard_paths(read_options.split)
    spec = schema.feature_spec()

    # One graph for parse + decode: per-image cost is the work, not eager op dispatch.
    @tf.function(input_signature=[tf.TensorSpec([], tf.string)])
    def prepare(serialized):
        with tf.device(runtime.INPUT_DEVICE):
            f = tf.io.parse_single_example(serialized, spec)
            image = preprocess.decode_and_resize(
                f[schema.ENCODED], read_options, height=f[schema.HEIGHT], width=f[schema.WIDTH]
            )
            return image, f[schema.LABEL], f[schema.FILENAME]

    prepare = prepare.get_concrete_function()  # trace now, not inside the timed loop

    def stream() -> Iterator[tuple[np.ndarray, int, str]]:
        # TFRecordDataset without prefetch reads synchronously on each next().
        records = tf.data.TFRecordDataset(paths).with_options(tfdata.tf_data_options(read_options))
        for serialized in records:
            image, label, key = prepare(serialized)
            yield image.numpy(), int(label), key.numpy().decode("utf-8")

    return stream()


def _stack(items: list[tuple[np.ndarray, int, str]], data_format: str) -> Batch:
    images = np.stack([i for i, _, _ in items])
    if data_format == "NCHW":  # as make_dataset does: one transpose per batch
        images = images.transpose(0, 3, 1, 2)
    return (
        images,
        np.asarray([lab for _, lab, _ in items], np.int64),
        [k for _, _, k in items],
    )


def _dir_batches(
    info: metadata.DatasetInfo,
    read_options: Any,
    mode: str,
    batch_size: int,
    device: str,
    prefetch_to_device: bool,
) -> Iterator[Batch]:
    """Batches of a dataset directory; the pipeline is built now, read when iterated."""
    if mode == "pipelined":
        from tfclassify import data

        ds = runtime.configure_dataset(data.make_dataset(info.directory, read_options))
        if prefetch_to_device:
            ds = runtime.prefetch_to_device(ds, device)
        return _tensor_batches(ds)
    records = _record_stream(info, read_options)
    size = 1 if mode == "sequential" else batch_size

    def batches() -> Iterator[Batch]:
        pending: list[tuple[np.ndarray, int, str]] = []
        for item in records:
            pending.append(item)
            if len(pending) == size:
                yield _stack(pending, read_options.data_format)
                pending = []
        if pending:
            yield _stack(pending, read_options.data_format)

    return batches()


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
            keys = [k.decode("utf-8") for k in e["key"].numpy()]
        else:
            keys = [str(i) for i in range(seen, seen + n)]
        seen += n
        yield images, labels, keys


def _dataset_batches(
    ds: Any, mode: str, batch_size: int, device: str, prefetch_to_device: bool
) -> Iterator[Batch]:
    """Batches from a caller's tf.data pipeline of batched {"image","label","key"} dicts.

    Rebatched to the mode's batch size. Sequential and batch modes add no prefetch,
    but cannot remove read-ahead the caller's pipeline already has.
    """
    import tensorflow as tf

    ds = ds.unbatch()
    if mode == "sequential":
        ds = ds.batch(1)
    elif mode == "batch":
        ds = ds.batch(batch_size)
    else:
        ds = ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
    ds = runtime.configure_dataset(ds)
    if mode == "pipelined" and prefetch_to_device:
        ds = runtime.prefetch_to_device(ds, device)  # must be the last transformation
    return _tensor_batches(ds, as_numpy=mode != "pipelined")


def _checked(batches: Iterator[Batch], data_name: str) -> Iterator[Batch]:
    """Read errors (corrupt shard, bad record) become one-line `DataError`s."""
    import tensorflow as tf

    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except tf.errors.OpError as e:
            first = (e.message or str(e)).strip().splitlines()
            raise DataError(f"reading {data_name} failed: {first[0] if first else e}") from e
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
    class_names: tuple[str, ...], dataset_labels: tuple[str, ...] | None
) -> np.ndarray | None:
    """Dataset label id -> model output index, when both name their classes differently."""
    if dataset_labels is None or tuple(dataset_labels) == tuple(class_names):
        return None
    index = {n: i for i, n in enumerate(class_names)}
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
    from tfclassify import data

    data.validate_data_format(fmt, predictor.device)
    size = predictor.image_size
    if options.image_size is not None:
        if size is not None and options.image_size != size:
            raise OptionsError(
                f"image_size {options.image_size} requested but {predictor.path} takes "
                f"{size[0]}x{size[1]} images"
            )
        size = options.image_size
    if size is None:
        raise OptionsError(
            f"{predictor.path} accepts any image size; pass image_size (--image_size)"
        )
    return size, fmt


def infer(
    model: str | Predictor,
    data: Any,
    options: InferOptions | None = None,
    *,
    clock: Callable[[], float] = time.perf_counter,
) -> InferResult:
    """Runs a classifier over a dataset split and reports predictions, accuracy and speed.

    Args:
      model: a model path (see `Predictor.load`) or a loaded `Predictor`.
      data: a converted dataset directory, or a `tf.data.Dataset` of batched dicts
        {"image", "label" (-1 unknown), "key"} in the model's input layout.
      options: mode, batch size, device, threads, output file...
      clock: seconds counter (injectable for tests).

    Returns:
      An `InferResult`; if `options.output` is set, the predictions file and
      `summary.json` beside it have been written.

    Raises:
      InputError: missing/unusable model or dataset, unknown split or signature.
      OptionsError: bad options, TF already initialised with other threads, NCHW on CPU.
      OutputError: the output cannot be written.
    """
    options = options or InferOptions()
    # Threads before anything touches TF's runtime (model load initialises it).
    runtime.apply_threads(options.threads)
    info: metadata.DatasetInfo | None = None
    split: str | None = None
    if isinstance(data, (str, os.PathLike)):
        # Dataset checks first: they are cheap, the model load is not.
        info = metadata.load(os.fspath(data))
        split = options.split or _default_split(info)
        info.split(split)  # clear error listing the available splits
    elif not hasattr(data, "element_spec"):
        raise InputError(
            f"data must be a converted dataset directory or a tf.data.Dataset, got {type(data)}"
        )
    elif options.split is not None:
        raise OptionsError("split applies to a dataset directory, not a tf.data.Dataset")
    predictor = (
        model
        if isinstance(model, Predictor)
        else Predictor.load(
            model,
            signature=options.signature,
            device=options.device,
            outputs=options.outputs,
            freeze=options.freeze,
        )
    )
    image_size, data_format = _resolve_input(predictor, options)

    if info is not None:
        read_options = _read_options(options, split, image_size, predictor, data_format)
        batches = _dir_batches(
            info,
            read_options,
            options.mode,
            options.batch_size,
            predictor.device,
            options.prefetch_to_device,
        )
        data_name = info.directory
    else:
        batches = _dataset_batches(
            data, options.mode, options.batch_size, predictor.device, options.prefetch_to_device
        )
        data_name = "<tf.data.Dataset>"

    dataset_labels = info.labels if info is not None else None
    class_names = _class_names(predictor, dataset_labels)
    remap = _label_remap(class_names, dataset_labels)
    k = min(options.top_k, len(class_names))

    predictor.warmup(image_size)  # trace once outside the timed loop
    keys: list[str] = []
    labels: list[np.ndarray] = []
    probs: list[np.ndarray] = []
    limit = options.max_images or math.inf
    start = clock()
    for images, batch_labels, batch_keys in _checked(batches, data_name):
        room = limit - len(keys)
        if room < len(batch_keys):
            images, batch_labels, batch_keys = (
                images[: int(room)],
                batch_labels[: int(room)],
                batch_keys[: int(room)],
            )
        if len(batch_keys):
            probs.append(predictor.predict(images))
            labels.append(batch_labels)
            keys.extend(batch_keys)
        if len(keys) >= limit:
            break
    seconds = clock() - start

    num_classes = len(class_names)
    p = np.concatenate(probs) if probs else np.zeros((0, num_classes), np.float32)
    true_ids = np.concatenate(labels) if labels else np.zeros((0,), np.int64)
    if remap is not None:
        true_ids = np.where(true_ids >= 0, remap[np.clip(true_ids, 0, len(remap) - 1)], -1)
    true_ids = np.where(true_ids < num_classes, true_ids, -1).astype(np.int64)
    # Stable sort: ties resolve to the lower class index in every mode.
    order = np.argsort(-p, axis=1, kind="stable")[:, :k]
    result = InferResult(
        mode=options.mode,
        device=predictor.device,
        threads=runtime.effective_threads(),
        model=predictor.path,
        data=data_name,
        split=split,
        batch_size=1 if options.mode == "sequential" else options.batch_size,
        class_names=class_names,
        keys=keys,
        true_ids=true_ids,
        topk_ids=order.astype(np.int64),
        topk_probs=np.take_along_axis(p, order, axis=1),
        probabilities=p if options.keep_probabilities else None,
        seconds=seconds,
        frozen=predictor.freeze,
    )
    if options.output:
        write_predictions(result, options.output)
    return result


# ---------------------------------------------------------------- command line


def _parse_size(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    parts = text.lower().replace(",", "x").split("x")
    try:
        nums = [int(p) for p in parts]
    except ValueError:
        raise OptionsError(f"--image_size must be N or HxW, got {text!r}") from None
    if len(nums) == 1:
        return (nums[0], nums[0])
    if len(nums) == 2:
        return (nums[0], nums[1])
    raise OptionsError(f"--image_size must be N or HxW, got {text!r}")


def _flags() -> Any:
    from absl import flags

    fv = flags.FlagValues()
    d = {f.name: f.default for f in dataclasses.fields(InferOptions) if f.name != "threads"}

    def s(name: str, default: Any, help_: str) -> None:
        flags.DEFINE_string(name, default, help_, flag_values=fv)

    def i(name: str, default: Any, help_: str) -> None:
        flags.DEFINE_integer(name, default, help_, flag_values=fv)

    s("model", None, "SavedModel dir, .keras file, or a tfclassify model dir.")
    s("data", None, "Converted dataset directory (has dataset.json).")
    s("split", None, "Split to run on (default: validation if present, else train).")
    s("mode", d["mode"], f"One of {', '.join(INFER_MODES)}.")
    i("batch_size", d["batch_size"], "Images per model call (batch and pipelined modes).")
    i("top_k", d["top_k"], "Classes listed per image.")
    s("output", None, "Predictions file (.csv or .jsonl); summary.json goes beside it.")
    s("device", d["device"], "auto, cpu or gpu.")
    i("tf_data_threads", None, "tf.data private thread pool size (default: shared pool).")
    cli.define_runtime_flags(fv)
    s("data_format", None, "NHWC or NCHW (default: from the model; NCHW needs a GPU).")
    s("image_size", None, "N or HxW (default: from the model's input shape).")
    s("signature", d["signature"], "SavedModel signature to call.")
    s("outputs", d["outputs"], "auto, probabilities or logits (softmax applied).")
    i("max_images", None, "Stop after this many images.")
    s("describe", None, "Print MODEL's signatures (inputs/outputs) and exit.")
    flags.DEFINE_bool(
        "freeze",
        d["freeze"],
        "Run the model as a frozen inference graph (faster); --nofreeze calls it as saved.",
        flag_values=fv,
    )
    flags.DEFINE_bool(
        "prefetch_to_device",
        False,
        "GPU only: copy batch N+1 to the GPU during batch N.",
        flag_values=fv,
    )
    return fv


def _options_from_flags(fv: Any) -> InferOptions:
    return InferOptions(
        mode=fv.mode,
        batch_size=fv.batch_size,
        top_k=fv.top_k,
        split=fv.split,
        image_size=_parse_size(fv.image_size),
        data_format=fv.data_format.upper() if fv.data_format else None,
        device=fv.device,
        threads=cli.thread_options(fv, tf_data_threads=fv.tf_data_threads),
        signature=fv.signature,
        outputs=fv.outputs,
        freeze=fv.freeze,
        output=fv.output,
        max_images=fv.max_images,
        prefetch_to_device=fv.prefetch_to_device,
        # The CLI writes rows as it reports; no need to hold [N, classes] probabilities.
        keep_probabilities=False,
    )


def main(argv: list[str] | None = None) -> int:
    """`python -m tfclassify.infer`; returns the exit status (2 for user errors)."""

    def body(fv: Any) -> int:
        if fv.describe:
            print(describe(fv.describe))
            return 0
        cli.require(fv, ("model", "data"), " (or pass --describe MODEL)")
        print(infer(fv.model, fv.data, _options_from_flags(fv)))
        return 0

    return cli.run("tfclassify.infer", _flags(), argv, body)


_callable.forward_calls(__name__, "infer")

if __name__ == "__main__":
    sys.exit(main())
