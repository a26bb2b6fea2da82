"""Frozen option dataclasses shared by the Python API and the commands.

Each field declares its check (a type and a range or a set of choices) next to its
default. `__post_init__` runs them, so a bad value, of any type, is an OptionsError
naming the field and the value where the options are made, never a TypeError or an
overflow deep in TensorFlow. Code that takes these options trusts them.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
from collections.abc import Callable
from typing import Any

from tfclassify.core.cpus import available_cpus
from tfclassify.core.errors import OptionsError

# TF takes batch sizes, image sides and counts as int32.
INT32_MAX = 2**31 - 1
MAX_SEED = 2**32 - 1  # numpy and Keras take uint32 seeds: one seed fits convert and train
MAX_THREADS = 4096  # more than any CPU has: a typo
DEFAULT_MAX_PIXELS = 89_478_485  # Pillow's decompression-bomb limit

RUNTIME_DEVICES = ("auto", "cpu", "gpu")
DATA_FORMATS = ("NHWC", "NCHW")
INFER_MODES = ("sequential", "batch", "pipelined")
MODEL_OUTPUTS = ("auto", "probabilities", "logits")
# What runs a model: `auto` picks by file (.tflite: LiteRT, .xml: OpenVINO, else TF).
MODEL_RUNTIMES = ("auto", "tensorflow", "litert", "openvino")
# OpenVINO's CPU inference precision, always set explicitly (its default is bf16
# on CPUs that have it).
OPENVINO_PRECISIONS = ("f32", "bf16")
TRAIN_ARCHS = ("small_cnn", "mobilenet_v2")
# What `tfclassify.quantize` writes: LiteRT files, then OpenVINO IRs (models/quantization.py).
QUANTIZE_VARIANTS = (
    "fp32",
    "dynamic-range",
    "float16",
    "int8",
    "openvino-f32",
    "openvino-bf16",
    "openvino-int8",
)
SELECT_MODES = ("auto", "none")
# ConvertOptions.max_file_mb's default (see the field), also the decode check's cap.
DEFAULT_MAX_FILE_MB = 1024.0
# Records in the shuffle buffer of a training split read shuffled by default.
SHUFFLE_BUFFER = 1024
READ_DTYPES = ("float32", "bfloat16", "float16", "uint8")
RESIZE_METHODS = (  # tf.image.ResizeMethod's names
    "bilinear",
    "nearest",
    "bicubic",
    "area",
    "lanczos3",
    "lanczos5",
    "gaussian",
    "mitchellcubic",
)

Check = Callable[[str, Any], Any]  # (field name, value) -> the value to store


def _refuse(name: str, what: str, value: Any) -> OptionsError:
    return OptionsError(f"{name} must be {what}, got {value!r}")


def _int(low: int, high: int, what: str = "") -> Check:
    def check(name: str, value: Any) -> Any:
        integer = isinstance(value, numbers.Integral) and not isinstance(value, bool)
        if not integer or not low <= value <= high:
            raise _refuse(name, what or f"an integer in [{low}, {high}]", value)
        return int(value)  # numpy's too, as JSON and TF take it

    return check


def _number(low: float, high: float, *, open_low: bool = False, open_high: bool = False) -> Check:
    """A number in the interval; NaN compares false, so it is refused."""
    what = f"a number in {'(' if open_low else '['}{low}, {high}{')' if open_high else ']'}"

    def check(name: str, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise _refuse(name, what, value)
        if not (low < value if open_low else low <= value) or not (
            value < high if open_high else value <= high
        ):
            raise _refuse(name, what, value)
        return value if isinstance(value, (int, float)) else float(value)

    return check


def _one_of(*choices: Any) -> Check:
    def check(name: str, value: Any) -> Any:
        # By type too: True == 1 and 1.0 == 1, but neither is the choice 1.
        if isinstance(value, bool) or not any(
            isinstance(value, type(c)) and value == c for c in choices
        ):
            raise _refuse(name, f"one of {choices}", value)
        return value

    return check


def _flag(name: str, value: Any) -> Any:
    if not isinstance(value, bool):
        raise _refuse(name, "True or False", value)
    return value


def _text(name: str, value: Any) -> Any:
    if not isinstance(value, str) or not value:
        raise _refuse(name, "a non-empty string", value)
    return value


def _path(name: str, value: Any) -> Any:
    """A non-empty path, stored as a str."""
    if not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
        raise _refuse(name, "a path", value)
    return os.fspath(value)


def _instance(cls: type) -> Check:
    def check(name: str, value: Any) -> Any:
        if not isinstance(value, cls):
            raise _refuse(name, f"a {cls.__name__}", value)
        return value

    return check


def _size(name: str, value: Any) -> Any:
    """An int (a square) or a (height, width) pair -> (height, width)."""
    pair = (value, value) if isinstance(value, numbers.Integral) else value
    sides = tuple(pair) if isinstance(pair, (tuple, list)) else ()
    if len(sides) != 2 or not all(
        isinstance(s, numbers.Integral) and not isinstance(s, bool) and 0 < s <= INT32_MAX
        for s in sides
    ):
        raise _refuse(name, f"an int or a (height, width) pair in [1, {INT32_MAX}]", value)
    return tuple(int(s) for s in sides)


_threads = _int(1, MAX_THREADS)
_batch_size = _int(1, INT32_MAX)
_calls = _int(-1, MAX_THREADS, f"-1 (AUTOTUNE) or an integer in [1, {MAX_THREADS}]")


def _parallelism(name: str, value: Any) -> Any:
    if isinstance(value, numbers.Integral) and value == 0:  # tf.data refuses 0 calls
        raise _refuse(name, f"-1 (AUTOTUNE) or an integer in [1, {MAX_THREADS}]", value)
    return _calls(name, value)


def _field(default: Any, check: Check, *, none: bool | None = None) -> Any:
    """A dataclass field with its check. None is allowed when `none` (by default,
    when the default is None); otherwise it is refused as a missing value."""
    allow_none = default is None if none is None else none

    def checked(name: str, value: Any) -> Any:
        if value is None:
            if allow_none:
                return None
            raise _refuse(name, "set", value)
        return check(name, value)

    return dataclasses.field(default=default, metadata={"check": checked})


def _required(check: Check) -> Any:
    """A field without a usable default: None, refused when left out."""
    return _field(None, check, none=False)


class _Checked:
    """Runs every field's check after `__init__`; subclasses add checks between fields."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = f.metadata["check"](f.name, getattr(self, f.name))
            object.__setattr__(self, f.name, value)


@dataclasses.dataclass(frozen=True, kw_only=True)
class ImageConfig(_Checked):
    """What the converter does to one image (the part of `ConvertOptions` it needs).

    Attributes:
      validate: `full` decodes every image; `header` checks magic, header and trailer;
        `none` only sniffs the format.
      image_format: `keep` stores original bytes when TF's decoders read them as
        Pillow does; `jpeg`/`png` re-encode everything not already in that format.
      resize_shorter_side / max_side: shrink (never enlarge) at conversion time.
      jpeg_quality: quality of any JPEG the converter encodes.
      max_pixels: refuse larger images from their header, before decoding.
    """

    validate: str = _field("full", _one_of("full", "header", "none"))
    image_format: str = _field("keep", _one_of("keep", "jpeg", "png"))
    resize_shorter_side: int | None = _field(None, _int(1, INT32_MAX))
    max_side: int | None = _field(None, _int(1, INT32_MAX))
    jpeg_quality: int = _field(95, _int(1, 100))
    # 2**40 (~3 TiB as RGB): no host decodes more.
    max_pixels: int = _field(DEFAULT_MAX_PIXELS, _int(1, 2**40))


@dataclasses.dataclass(frozen=True)
class ConvertOptions(ImageConfig):
    """What `tfclassify.convert` does. Exactly one of `input_dir` and `manifest`.

    Every value is checked here, before anything is written; the bounds are where a
    value can only be a typo. The image fields are `ImageConfig`'s.

    Attributes:
      output_dir: where shards, dataset.json, labels.txt and skipped.csv go (required).
      input_dir: folder per class, optionally below `train/`, `validation/`, `test/`.
      manifest: CSV with header `path,label[,split]`; paths relative to the CSV's folder.
      name: shard name prefix.
      shard_size_mb: target shard size in MiB of serialized records.
      num_workers: threads converting images; None means the CPUs this process may
        use. The output does not depend on it.
      seed: shuffle/split seed; same seed, same output bytes.
      validation_fraction: carve a stratified validation split out of `train`.
      max_file_mb: skip larger files (`too_large`) from their size, unread.
      follow_external_links: follow links whose target is outside the input root;
        off, they are skipped as `outside_root`.
      resume: finish an interrupted run in `output_dir`.
      overwrite: replace a previous tfclassify output in `output_dir`.
      quiet: no progress bars (nor, where stderr is not a terminal, progress lines).
    """

    output_dir: str = _required(_path)
    input_dir: str | None = _field(None, _path)
    manifest: str | None = _field(None, _path)
    name: str = _field("data", _text)
    # ~1 KiB (one record a shard) to 16 GiB.
    shard_size_mb: float = _field(100.0, _number(0.001, 16384))
    num_workers: int | None = _field(None, _int(1, 1024))
    seed: int = _field(0, _int(0, MAX_SEED))
    validation_fraction: float = _field(0.0, _number(0, 1, open_high=True))
    # 1 GiB holds any image within DEFAULT_MAX_PIXELS; a record must stay under 2 GiB.
    max_file_mb: float = _field(DEFAULT_MAX_FILE_MB, _number(0.001, 2047))
    follow_external_links: bool = _field(False, _flag)
    resume: bool = _field(False, _flag)
    overwrite: bool = _field(False, _flag)
    quiet: bool = _field(False, _flag)

    def __post_init__(self) -> None:
        super().__post_init__()
        if (self.input_dir is None) == (self.manifest is None):
            raise OptionsError(
                "exactly one of input_dir and manifest must be given, got "
                f"input_dir={self.input_dir!r}, manifest={self.manifest!r}"
            )
        if "-" in self.name or os.sep in self.name:
            raise _refuse("name", f"a shard prefix without '-' or '{os.sep}'", self.name)
        if self.resume and self.overwrite:
            raise OptionsError(
                "resume and overwrite conflict: resume keeps the finished shards, "
                "overwrite deletes them; pass one"
            )

    @property
    def workers(self) -> int:
        return self.num_workers or available_cpus()

    @property
    def shard_bytes(self) -> int:
        return int(self.shard_size_mb * 2**20)

    @property
    def max_file_bytes(self) -> int:
        return int(self.max_file_mb * 2**20)

    def fingerprint(self) -> dict[str, Any]:
        """Options that determine the output bytes; a resume must match them exactly."""
        d = dataclasses.asdict(self)
        for k in ("num_workers", "resume", "overwrite", "quiet", "output_dir"):
            d.pop(k)
        return d


@dataclasses.dataclass(frozen=True)
class ThreadOptions(_Checked):
    """TensorFlow's process-wide CPU runtime, applied by
    `tfclassify.models.runtime.apply_threads` before TF starts (op pools) or is
    imported (oneDNN). A tf.data pipeline's own pool is `ReadOptions.private_threadpool_size`.

    Attributes:
      intra_op: threads one op may use; None keeps TF's default (all cores).
      inter_op: ops run concurrently; None keeps TF's default.
      onednn: run CPU ops on oneDNN (TF's `TF_ENABLE_ONEDNN_OPTS`). None means on,
        unless that variable is set in the environment; False keeps TF's Eigen kernels.
    """

    intra_op: int | None = _field(None, _threads)
    inter_op: int | None = _field(None, _threads)
    onednn: bool | None = _field(None, _flag)


@dataclasses.dataclass(frozen=True)
class ReadOptions(_Checked):
    """How `tfclassify.make_dataset` reads, decodes and batches shards.

    -1 means `tf.data.AUTOTUNE` where it is allowed (`ReadOptions.AUTOTUNE`).

    Attributes:
      split: split read from a dataset directory (ignored for globs and path lists).
      image_size: output (height, width); an int means square.
      batch_size: images per batch.
      drop_remainder: drop a last, smaller batch (a fully static batch dimension).
      resize: `squash` (aspect ignored), `center_crop` (cover image_size /
        crop_fraction, then crop the centre) or `pad` (fit, then pad with black).
      crop_fraction: `center_crop` only: share of the resized image kept.
      resize_method: a `tf.image.ResizeMethod` name.
      antialias: low-pass filter when downsampling.
      normalize: `unit` [0, 1], `symmetric` [-1, 1], `imagenet` ((x/255 - mean) /
        std) or `none` [0, 255].
      dtype: `float32`, `bfloat16`, `float16`, or `uint8` (only with normalize `none`).
      data_format: `NHWC` or `NCHW` (transposed after batching).
      with_labels: include `label` (int64, -1 when a record has none).
      shuffle_files: shuffle the shard order each iteration.
      shuffle_buffer: records in the shuffle buffer; 0 disables record shuffling.
      seed: seed of both shuffles; None draws a fresh order each run.
      cycle_length: shards read at once; None means min(shards, CPUs).
      block_length: consecutive records taken from one shard before the next (the
        default path takes them in runs of 16 x block_length).
      interleave_parallelism: threads reading shards; None reads in the consumer's
        thread when it asks for the next element. The record order is the same.
      map_parallelism: images decoded at once; None: one at a time, in the
        consumer's thread.
      prefetch: batches prepared ahead (0: none).
      deterministic: order of the parallel stages; None keeps tf.data's default
        (deterministic).
      private_threadpool_size: tf.data threads for this pipeline; None uses the
        shared pool. The one setting for it (infer's `--tf_data_threads` sets it).
      max_intra_op_parallelism: threads one tf.data op may use.
      autotune: run tf.data's autotuning model (a background thread); off, AUTOTUNE
        stages still run in parallel (see the README).
      ram_budget_mb: the autotuning model's buffer memory cap (needs `autotune`).
      graph_rewrites: tf.data's default static optimizations.
      reader_buffer_kb: read buffer of each open shard.
      allow_ratio_decode: decode JPEGs at 1/2, 1/4 or 1/8 scale when the stored
        image is at least that many times the resize target.
      dct_method: JPEG IDCT, `INTEGER_ACCURATE` (libjpeg's and Pillow's default) or
        `INTEGER_FAST`.
      skip_errors: skip, count and log corrupt records instead of failing.
    """

    AUTOTUNE = -1  # unannotated: a class constant, not a field

    split: str = _field("train", _text)
    image_size: Any = _field(224, _size)
    batch_size: int = _field(32, _batch_size)
    drop_remainder: bool = _field(False, _flag)
    resize: str = _field("center_crop", _one_of("squash", "center_crop", "pad"))
    crop_fraction: float = _field(0.875, _number(0, 1, open_low=True))
    resize_method: str = _field("bilinear", _one_of(*RESIZE_METHODS))
    antialias: bool = _field(False, _flag)
    normalize: str = _field("unit", _one_of("unit", "symmetric", "imagenet", "none"))
    dtype: str = _field("float32", _one_of(*READ_DTYPES))
    data_format: str = _field("NHWC", _one_of(*DATA_FORMATS))
    with_labels: bool = _field(True, _flag)
    shuffle_files: bool = _field(False, _flag)
    shuffle_buffer: int = _field(0, _int(0, INT32_MAX))
    seed: int | None = _field(None, _int(0, MAX_SEED))
    cycle_length: int | None = _field(None, _int(1, INT32_MAX))
    block_length: int = _field(1, _int(1, INT32_MAX))
    interleave_parallelism: int | None = _field(-1, _parallelism, none=True)
    map_parallelism: int | None = _field(-1, _parallelism, none=True)
    prefetch: int = _field(-1, _int(-1, INT32_MAX))
    deterministic: bool | None = _field(None, _flag)
    private_threadpool_size: int | None = _field(None, _threads)
    max_intra_op_parallelism: int | None = _field(None, _threads)
    autotune: bool = _field(False, _flag)
    ram_budget_mb: int | None = _field(None, _int(1, INT32_MAX))
    graph_rewrites: bool = _field(False, _flag)
    # Up to 2 GiB a file: far beyond any gain, short of int32 bytes.
    reader_buffer_kb: int = _field(256, _int(1, 2**21))
    allow_ratio_decode: bool = _field(True, _flag)
    dct_method: str = _field("INTEGER_ACCURATE", _one_of("INTEGER_ACCURATE", "INTEGER_FAST"))
    skip_errors: bool = _field(False, _flag)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.dtype == "uint8" and self.normalize != "none":
            raise OptionsError(
                "dtype 'uint8' holds only raw pixel values: it needs normalize='none', "
                f"got normalize={self.normalize!r}"
            )
        if self.ram_budget_mb is not None and not self.autotune:
            raise OptionsError(
                f"ram_budget_mb={self.ram_budget_mb} caps the autotuning model's buffers: "
                "it needs autotune=True"
            )


@dataclasses.dataclass(frozen=True)
class InferOptions(_Checked):
    """What `tfclassify.infer` does. The mode changes speed, never predictions.

    Attributes:
      mode: `sequential` (one image at a time), `batch` (decode a batch, then
        predict it) or `pipelined` (batch N+1 is prepared while N computes).
      batch_size: images per model call in `batch` and `pipelined` modes.
      top_k: classes each prediction row lists (clipped to the class count).
      split: dataset split; None means `validation` if present, else `train`.
      image_size: (height, width) images are resized to; None: the model's.
      data_format: `NHWC` or `NCHW`; None: the model's.
      device: `auto` (GPU if present), `cpu` or `gpu`.
      threads: the thread budget, applied before the model is loaded: TF's pools,
        and `intra_op` is also the LiteRT and OpenVINO thread count (None: the CPUs
        this process may use).
      runtime: what runs the model: `auto` (by file: `.tflite` on LiteRT, `.xml` on
        OpenVINO, a SavedModel or `.keras` on TensorFlow), `tensorflow`, `litert`
        (a `.tflite` file) or `openvino` (an IR, a SavedModel or a `.keras` file).
      precision: OpenVINO's CPU inference precision, `f32` or `bf16` (only on a CPU
        that has it); None: `f32`, set explicitly. An int8 IR keeps its int8 layers.
      signature: SavedModel signature to call.
      outputs: whether the model emits `probabilities` or `logits` (softmax applied);
        `auto` decides from the model or its first batch.
      freeze: run the model as a frozen inference graph (see `Predictor.load`).
      output: predictions file, `.csv` or `.jsonl`; `summary.json` goes beside it.
      max_images: stop after this many images (None: the whole split).
      keep_probabilities: keep the [N, num_classes] matrix on the result.
      prefetch_to_device: on GPU, copy the next batch to the device during the
        current one (pipelined mode only).
      mixed_precision: float16 compute on GPU (refused on CPU).
      read: how a dataset directory is read (resize, normalize, tf.data knobs, its
        thread pool, `skip_errors`): use what the model was trained with. Split,
        image size, batch size and layout come from these options and the model; the
        sequential and batch modes read with nothing running ahead. A model with
        integer input reads raw pixels (normalize `none`, dtype `uint8`) unless
        `read` asks for another normalization than the default, which is refused.
        None means `ReadOptions()`.
      quiet: no progress bar (nor, where stderr is not a terminal, progress lines).
    """

    mode: str = _field("pipelined", _one_of(*INFER_MODES))
    batch_size: int = _field(32, _batch_size)
    top_k: int = _field(5, _int(1, INT32_MAX))
    split: str | None = _field(None, _text)
    image_size: Any = _field(None, _size)
    data_format: str | None = _field(None, _one_of(*DATA_FORMATS))
    device: str = _field("auto", _one_of(*RUNTIME_DEVICES))
    threads: ThreadOptions = _field(ThreadOptions(), _instance(ThreadOptions))
    runtime: str = _field("auto", _one_of(*MODEL_RUNTIMES))
    precision: str | None = _field(None, _one_of(*OPENVINO_PRECISIONS))
    signature: str = _field("serving_default", _text)
    outputs: str = _field("auto", _one_of(*MODEL_OUTPUTS))
    freeze: bool = _field(True, _flag)
    output: str | None = _field(None, _path)
    # Record counts are int64 (dataset.json, tf.data's cardinality).
    max_images: int | None = _field(None, _int(1, 2**63 - 1))
    keep_probabilities: bool = _field(True, _flag)
    prefetch_to_device: bool = _field(False, _flag)
    mixed_precision: bool = _field(False, _flag)
    read: ReadOptions | None = _field(None, _instance(ReadOptions))
    quiet: bool = _field(False, _flag)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.output is not None and not self.output.lower().endswith((".csv", ".jsonl")):
            raise _refuse("output", "a path ending in .csv or .jsonl", self.output)


@dataclasses.dataclass(frozen=True)
class TrainOptions(_Checked):
    """What `tfclassify.train` does: a small trainer for examples and the demo.

    Attributes:
      data: a converted dataset directory (required).
      output: model directory (required); gets `saved_model/`, `model.keras` and
        `labels.txt`.
      arch: `small_cnn` (fast on CPU) or `mobilenet_v2` (random init).
      epochs: passes over the training split.
      image_size: (height, width) the model takes; an int means square.
      batch_size: images per step.
      learning_rate: Adam learning rate.
      seed: weight init and shuffle seed: the same seed, the same orders.
      shuffle_buffer: the training split is read in a fresh seeded order each epoch
        (shards shuffled, then records through a buffer of this many; Keras too
        shuffles its training data by default); 0 reads it in file order. The
        validation split is always read in file order.
      train_split: split fitted on.
      validation_split: split evaluated after each epoch; None uses `validation` if
        the dataset has it.
      device: `auto`, `cpu` or `gpu`.
      threads: TF's thread budget, applied before the model is built.
      mixed_precision: float16 compute on GPU (refused on CPU).
      overwrite: replace existing model files in `output`.
      verbose: Keras fit verbosity (0, 1 or 2).
      read: preprocessing and tf.data knobs; pass the same to `InferOptions.read`.
        Split, image size, batch size, layout, dtype and shuffling are the
        trainer's. None means `ReadOptions()`.
    """

    data: str = _required(_path)
    output: str = _required(_path)
    arch: str = _field("small_cnn", _one_of(*TRAIN_ARCHS))
    epochs: int = _field(5, _int(1, INT32_MAX))
    image_size: Any = _field(64, _size)
    batch_size: int = _field(32, _batch_size)
    learning_rate: float = _field(1e-3, _number(0, math.inf, open_low=True, open_high=True))
    seed: int = _field(0, _int(0, MAX_SEED))
    shuffle_buffer: int = _field(SHUFFLE_BUFFER, _int(0, INT32_MAX))
    train_split: str = _field("train", _text)
    validation_split: str | None = _field(None, _text)
    device: str = _field("auto", _one_of(*RUNTIME_DEVICES))
    threads: ThreadOptions = _field(ThreadOptions(), _instance(ThreadOptions))
    mixed_precision: bool = _field(False, _flag)
    overwrite: bool = _field(False, _flag)
    verbose: int = _field(2, _one_of(0, 1, 2))
    read: ReadOptions | None = _field(None, _instance(ReadOptions))

    def __post_init__(self) -> None:
        super().__post_init__()
        # The smallest side each arch builds with: small_cnn's convs and pools leave
        # no pixel below 14; MobileNetV2 refuses < 32.
        least = {"small_cnn": 14, "mobilenet_v2": 32}[self.arch]
        if min(self.image_size) < least:
            raise _refuse("image_size", f"at least {least} for arch {self.arch}", self.image_size)


def _variants(name: str, value: Any) -> Any:
    """A non-empty list of distinct `QUANTIZE_VARIANTS` names -> a tuple."""
    if isinstance(value, str) or not isinstance(value, (tuple, list)) or not value:
        raise _refuse(name, f"a non-empty list of variant names from {QUANTIZE_VARIANTS}", value)
    for v in value:
        if v not in QUANTIZE_VARIANTS:
            raise OptionsError(
                f"unknown variant {v!r} in {name}; known: {', '.join(QUANTIZE_VARIANTS)}"
            )
    twice = sorted({v for v in value if list(value).count(v) > 1})
    if twice:
        raise OptionsError(f"{name} lists {', '.join(twice)} more than once")
    return tuple(value)


@dataclasses.dataclass(frozen=True)
class QuantizeOptions(_Checked):
    """What `tfclassify.quantize` does: write a float model's variants, measure each one
    end to end on the same shards, and (with `select='auto'`) pick one.

    Attributes:
      output_dir: where the variant files, labels.txt and report.json go (required).
      variants: names from `QUANTIZE_VARIANTS`; None: every variant whose runtime is
        installed (and, for `openvino-bf16`, that this CPU runs).
      representative_samples: training images the int8 variants are calibrated on,
        read and preprocessed as inference reads them.
      representative_split: the split they are drawn from.
      max_accuracy_drop: how much lower than the float model's top-1 accuracy a
        variant's may be and still be selected.
      select: `auto` picks the fastest variant within the accuracy budget (or the
        float model) and records it, so that `Predictor.load(output_dir)` and
        `infer --model output_dir` run it; `none` only measures.
      split: the labelled split every contender is measured on; None: `validation`
        if present, else `train`.
      batch_size: images per model call while measuring.
      max_images: measure on the first this many images of `split` (None: all).
      image_size: (height, width) for a model that accepts any size; None: the model's.
      signature: the float SavedModel's signature.
      threads: the thread budget (TF's pools; `intra_op` is also the LiteRT and
        OpenVINO thread count).
      read: how images are read and preprocessed, as for `InferOptions.read`.
      overwrite: replace a previous quantize output in `output_dir`.
      quiet: no progress bars (nor, where stderr is not a terminal, progress lines).
    """

    output_dir: str = _required(_path)
    variants: tuple[str, ...] | None = _field(None, _variants)
    representative_samples: int = _field(200, _int(1, INT32_MAX))
    representative_split: str = _field("train", _text)
    max_accuracy_drop: float = _field(0.01, _number(0, 1))
    select: str = _field("auto", _one_of(*SELECT_MODES))
    split: str | None = _field(None, _text)
    batch_size: int = _field(32, _batch_size)
    max_images: int | None = _field(None, _int(1, 2**63 - 1))
    image_size: Any = _field(None, _size)
    signature: str = _field("serving_default", _text)
    threads: ThreadOptions = _field(ThreadOptions(), _instance(ThreadOptions))
    read: ReadOptions | None = _field(None, _instance(ReadOptions))
    overwrite: bool = _field(False, _flag)
    quiet: bool = _field(False, _flag)
