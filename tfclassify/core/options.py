"""Frozen, self-validating option dataclasses shared by the Python API and the CLIs.

Validation lives in `__post_init__` so a bad value fails where it is made (a
notebook cell, a flag) with a message that shows the value, not deep inside TF.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any

from tfclassify.core.cpus import available_cpus
from tfclassify.core.errors import OptionsError

DEFAULT_MAX_PIXELS = 89_478_485  # Pillow's decompression-bomb limit.


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise OptionsError(msg)


# TF takes batch sizes, image sides and counts as int32: an absurd one would
# overflow deep in TF (tf.data, resize) instead of failing where it is set.
INT32_MAX = 2**31 - 1
MAX_BATCH_SIZE = INT32_MAX
# TF starts every op and tf.data thread it is given: more than any CPU has is a typo.
MAX_THREADS = 4096


def _check_batch_size(value: Any) -> None:
    _check_range("batch_size", value, 1, MAX_BATCH_SIZE)


def _check_range(
    name: str, value: Any, low: float, high: float, *, integer: bool = True, optional: bool = False
) -> None:
    """Refuses `value` unless it is an int (a finite int or float unless `integer`) in
    [low, high], or None when `optional`: the message names the field and the range."""
    if optional and value is None:
        return
    kinds = int if integer else (int, float)
    _check(
        isinstance(value, kinds) and not isinstance(value, bool) and low <= value <= high,
        f"{name} must be {'an integer' if integer else 'a number'} in [{low}, {high}]"
        f"{' or None' if optional else ''}, got {value!r}",
    )


def to_json(options: Any) -> dict[str, Any]:
    """A JSON-safe dict of a dataclass's fields (stored in dataset.json / summary.json)."""
    return {f.name: getattr(options, f.name) for f in dataclasses.fields(options)}


# Bounds of ConvertOptions' numbers. Beyond them a value is a typo that would fail deep
# in a conversion (an overflow, a division by zero, 2**31 threads), after its work dir
# was made. Shards: ~1 KiB (below any record: one record a shard) to 16 GiB.
SHARD_SIZE_MB_RANGE = (0.001, 16384)
MAX_WORKERS = 1024  # more threads than any host has cores, each holding files in flight
MAX_SIDE = INT32_MAX  # Pillow's and TF's image sides are int32
MAX_PIXELS_LIMIT = 2**40  # ~3 TiB as RGB: no host decodes more, so a higher cap means nothing
MAX_SEED = 2**32 - 1  # as TrainOptions': one seed fits convert and train
# 1 GiB: above the largest file holding an image within DEFAULT_MAX_PIXELS (8 bytes a
# pixel, uncompressed 16-bit RGBA), and a record (one protobuf) holds less than 2 GiB.
DEFAULT_MAX_FILE_MB = 1024.0
MAX_FILE_MB_LIMIT = 2047


@dataclasses.dataclass(frozen=True)
class ConvertOptions:
    """What `tfclassify.convert` does. Exactly one of `input_dir` and `manifest`.

    Every number is bounded (the constants above): a value outside is an OptionsError
    naming the field, raised before anything is written.

    Attributes:
      input_dir: folder per class, optionally below `train/`, `validation/`, `test/`.
      manifest: CSV with header `path,label[,split]`; paths relative to the CSV's folder.
      output_dir: where shards, dataset.json, labels.txt and skipped.csv go.
      name: shard name prefix.
      shard_size_mb: target shard size in MiB of serialized records, in [0.001, 16384].
      num_workers: threads converting images (and, with validate=full, decoding JPEGs
        on tf.data's threads), at most 1024; None means all cores. Output does not
        depend on it.
      seed: shuffle/split seed in [0, 2**32 - 1]; same seed, same output bytes.
      validation_fraction: carve a stratified validation split out of `train`.
      validate: `full` decodes every image; `header` checks magic, header and trailer;
        `none` only sniffs the format.
      image_format: `keep` stores original bytes when the TF decoders read them
        correctly; `jpeg`/`png` re-encode everything not already in that format.
      resize_shorter_side / max_side: shrink (never enlarge) at conversion time.
      jpeg_quality: quality of any JPEG the converter encodes.
      max_pixels: refuse larger images from their header, before decoding (<= 2**40).
      max_file_mb: skip larger files (`too_large`) from their size, before reading
        them (only their first bytes are sniffed), in [0.001, 2047].
      follow_external_links: follow links (to files or folders) whose target is
        outside the input root (input_dir, or the manifest's folder); off, they are
        skipped as `outside_root`.
      resume: finish an interrupted run in `output_dir`.
      overwrite: replace a previous tfclassify output in `output_dir`.
      quiet: no progress bar.
    """

    output_dir: str
    input_dir: str | None = None
    manifest: str | None = None
    name: str = "data"
    shard_size_mb: float = 100.0
    num_workers: int | None = None
    seed: int = 0
    validation_fraction: float = 0.0
    validate: str = "full"
    image_format: str = "keep"
    resize_shorter_side: int | None = None
    max_side: int | None = None
    jpeg_quality: int = 95
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_file_mb: float = DEFAULT_MAX_FILE_MB
    follow_external_links: bool = False
    resume: bool = False
    overwrite: bool = False
    quiet: bool = False

    def __post_init__(self) -> None:
        _check(
            (self.input_dir is None) != (self.manifest is None),
            "exactly one of input_dir and manifest must be given, got "
            f"input_dir={self.input_dir!r}, manifest={self.manifest!r}",
        )
        _check(bool(self.output_dir), f"output_dir must be set, got {self.output_dir!r}")
        _check(
            bool(self.name) and "-" not in self.name and os.sep not in self.name,
            f"name must be non-empty without '-' or '{os.sep}', got {self.name!r}",
        )
        _check_range("shard_size_mb", self.shard_size_mb, *SHARD_SIZE_MB_RANGE, integer=False)
        _check_range("num_workers", self.num_workers, 1, MAX_WORKERS, optional=True)
        _check_range("seed", self.seed, 0, MAX_SEED)
        _check(
            isinstance(self.validation_fraction, (int, float))
            and not isinstance(self.validation_fraction, bool)
            and 0.0 <= self.validation_fraction < 1.0,
            f"validation_fraction must be in [0, 1), got {self.validation_fraction!r}",
        )
        _check(
            self.validate in ("full", "header", "none"),
            f"validate must be 'full', 'header' or 'none', got {self.validate!r}",
        )
        _check(
            self.image_format in ("keep", "jpeg", "png"),
            f"image_format must be 'keep', 'jpeg' or 'png', got {self.image_format!r}",
        )
        _check_range("resize_shorter_side", self.resize_shorter_side, 1, MAX_SIDE, optional=True)
        _check_range("max_side", self.max_side, 1, MAX_SIDE, optional=True)
        _check_range("jpeg_quality", self.jpeg_quality, 1, 100)
        _check_range("max_pixels", self.max_pixels, 1, MAX_PIXELS_LIMIT)
        _check_range("max_file_mb", self.max_file_mb, 0.001, MAX_FILE_MB_LIMIT, integer=False)
        _check(
            not (self.resume and self.overwrite),
            "resume and overwrite conflict: resume keeps the finished shards, overwrite "
            "deletes them; pass one",
        )

    @property
    def workers(self) -> int:
        # The CPUs this process may run on (a container's or taskset's share), not
        # the machine's.
        return self.num_workers or available_cpus()

    @property
    def shard_bytes(self) -> int:
        return int(self.shard_size_mb * 2**20)

    @property
    def max_file_bytes(self) -> int:
        return int(self.max_file_mb * 2**20)

    @property
    def reencodes(self) -> bool:
        return (
            self.image_format != "keep"
            or self.resize_shorter_side is not None
            or self.max_side is not None
        )

    def fingerprint(self) -> dict[str, Any]:
        """Options that determine the output bytes; a resume must match them exactly."""
        d = to_json(self)
        for k in ("num_workers", "resume", "overwrite", "quiet", "output_dir"):
            d.pop(k)
        return d


RUNTIME_DEVICES = ("auto", "cpu", "gpu")
INFER_DATA_FORMATS = ("NHWC", "NCHW")
INFER_MODES = ("sequential", "batch", "pipelined")
MODEL_OUTPUTS = ("auto", "probabilities", "logits")
TRAIN_ARCHS = ("small_cnn", "mobilenet_v2")
# Records in the shuffle buffer of a training split read shuffled by default.
SHUFFLE_BUFFER = 1024


def _hw_size(value: Any) -> tuple[int, int] | None:
    """`None`, an int (square) or a (height, width) pair -> normalized (h, w) or None."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value, value)
    try:
        h, w = (int(v) for v in value)
    except (TypeError, ValueError):
        raise OptionsError(
            f"image_size must be an int or a (height, width) pair, got {value!r}"
        ) from None
    _check(
        0 < h <= INT32_MAX and 0 < w <= INT32_MAX,
        f"image_size sides must be in [1, {INT32_MAX}], got {value!r}",
    )
    return (h, w)


@dataclasses.dataclass(frozen=True)
class ThreadOptions:
    """TensorFlow's CPU runtime: thread budget and kernel library, applied once by
    `tfclassify.models.runtime.apply_threads`.

    TF fixes its op thread pools when its runtime initialises (the first op, device
    listing aside), and reads its oneDNN switch when it is imported, so these must be
    applied before TensorFlow (or Keras) is imported or any model is loaded.

    Attributes:
      intra_op: threads one op (e.g. a conv) may use; None keeps TF's default (all cores).
      inter_op: ops run concurrently; None keeps TF's default.
      tf_data_threads: private thread pool of each tf.data pipeline tfclassify builds;
        None keeps tf.data's shared default pool.
      Each thread count is an integer in [1, `MAX_THREADS`] or None.
      onednn: run CPU ops on oneDNN (TF's `TF_ENABLE_ONEDNN_OPTS`). None means on,
        unless that variable is set in the environment: TF enables oneDNN by itself
        only on CPUs with AVX-512 VNNI/AMX, yet on an AVX2 CPU it ran the frozen
        MobileNetV2 ~1.8x and the tiny CNN ~1.2x faster (predictions may differ in
        the last float bits). False keeps TF's Eigen kernels.
    """

    intra_op: int | None = None
    inter_op: int | None = None
    tf_data_threads: int | None = None
    onednn: bool | None = None

    def __post_init__(self) -> None:
        for name in ("intra_op", "inter_op", "tf_data_threads"):
            _check_range(name, getattr(self, name), 1, MAX_THREADS, optional=True)


def _check_runtime(device: str, threads: Any) -> None:
    _check(device in RUNTIME_DEVICES, f"device must be one of {RUNTIME_DEVICES}, got {device!r}")
    _check(isinstance(threads, ThreadOptions), f"threads must be a ThreadOptions, got {threads!r}")


@dataclasses.dataclass(frozen=True)
class InferOptions:
    """What `tfclassify.infer.infer` does. The mode changes speed, never predictions.

    Attributes:
      mode: `sequential` reads, decodes and predicts one image at a time; `batch`
        decodes a whole batch, then predicts it, with no overlap; `pipelined` prepares
        batch N+1 (tf.data prefetch) while batch N is computed.
      batch_size: images per model call in `batch` and `pipelined` (sequential uses 1).
      top_k: how many classes each prediction row lists (clipped to the class count).
      split: dataset split; None means `validation` if present, else `train`.
      image_size: (height, width) images are resized to; None takes it from the
        model's input shape.
      data_format: `NHWC` or `NCHW`; None takes it from the model. NCHW needs a GPU.
      device: `auto` (GPU if present), `cpu` or `gpu`.
      threads: TF thread budget; applied before the model is loaded.
      signature: SavedModel signature to call.
      outputs: whether the model emits `probabilities` or `logits` (softmax applied);
        `auto` decides from the model (output activation / name) or its first batch.
      freeze: run the model as a frozen inference graph (variables folded into
        constants: faster, same outputs up to float rounding); see `Predictor.load`.
      output: predictions file, `.csv` or `.jsonl`; `summary.json` goes beside it.
      max_images: stop after this many images (None: the whole split).
      keep_probabilities: keep the full [N, num_classes] matrix on the result.
      prefetch_to_device: on GPU, copy the next batch to the device while the current
        one computes (pipelined mode only; ignored on CPU). Off by default: it is
        untested on tfclassify's CPU-only CI and TF's tracker reports cases where it
        silently copies back to the host.
      mixed_precision: on GPU, let TF rewrite the model's graph to float16 compute
        (Grappler's auto_mixed_precision; tensor-core GPUs gain most). Refused on
        CPU. Takes effect for a model loaded by this call, not for a `Predictor`
        that has already run.
      skip_errors: skip, count and log corrupt records of a dataset directory
        instead of failing (the same as `read=ReadOptions(skip_errors=True)`,
        without choosing any other read setting).
      read: preprocessing for dataset directories (resize, crop, normalize, tf.data
        knobs) - use what the model was trained with. Its split, image_size,
        batch_size, dtype and data_format are overridden from these options and the
        model; sequential and batch modes also read with no parallel stage, prefetch
        or graph rewrite (nothing may overlap the model). None means `ReadOptions()`
        defaults (what `tfclassify.train` uses), except for a model with integer
        input (e.g. uint8), which gets raw pixels: normalize `none`, dtype `uint8`.
        Such a model with a `read` that normalizes is refused. `skip_errors=True`
        skips bad records in every mode and counts them in `skipped_records`.
    """

    mode: str = "pipelined"
    batch_size: int = 32
    top_k: int = 5
    split: str | None = None
    image_size: Any = None
    data_format: str | None = None
    device: str = "auto"
    threads: ThreadOptions = dataclasses.field(default_factory=ThreadOptions)
    signature: str = "serving_default"
    outputs: str = "auto"
    freeze: bool = True
    output: str | None = None
    max_images: int | None = None
    keep_probabilities: bool = True
    prefetch_to_device: bool = False
    mixed_precision: bool = False
    skip_errors: bool = False
    read: ReadOptions | None = None

    def __post_init__(self) -> None:
        _check(self.mode in INFER_MODES, f"mode must be one of {INFER_MODES}, got {self.mode!r}")
        _check_batch_size(self.batch_size)
        _check_range("top_k", self.top_k, 1, INT32_MAX)
        object.__setattr__(self, "image_size", _hw_size(self.image_size))
        _check(
            self.data_format is None or self.data_format in INFER_DATA_FORMATS,
            f"data_format must be one of {INFER_DATA_FORMATS} or None, got {self.data_format!r}",
        )
        _check_runtime(self.device, self.threads)
        _check(bool(self.signature), f"signature must be non-empty, got {self.signature!r}")
        _check(
            self.outputs in MODEL_OUTPUTS,
            f"outputs must be one of {MODEL_OUTPUTS}, got {self.outputs!r}",
        )
        _check(
            self.output is None or self.output.lower().endswith((".csv", ".jsonl")),
            f"output must end in .csv or .jsonl, got {self.output!r}",
        )
        # Record counts are int64 (dataset.json, tf.data's cardinality).
        _check_range("max_images", self.max_images, 1, 2**63 - 1, optional=True)
        _check(
            self.read is None or isinstance(self.read, ReadOptions),
            f"read must be a ReadOptions or None, got {self.read!r}",
        )


@dataclasses.dataclass(frozen=True)
class TrainOptions:
    """What `tfclassify.train.train` does: a small trainer for examples and the demo.

    Attributes:
      data: a converted dataset directory (has dataset.json).
      output: model directory; gets `saved_model/`, `model.keras` and `labels.txt`.
      arch: `small_cnn` (two conv layers, fast on CPU) or `mobilenet_v2` (random init:
        nothing is downloaded).
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
      threads: TF thread budget, applied before the model is built.
      mixed_precision: float16 compute on GPU (an error on CPU).
      overwrite: replace existing model files in `output`.
      verbose: Keras fit verbosity (0, 1 or 2).
      read: preprocessing (resize, crop, normalize, tf.data knobs); pass the same to
        `InferOptions.read`. Split, image_size, batch_size, layout, dtype and shuffling
        are set by the trainer. None means `ReadOptions()` defaults.
    """

    data: str
    output: str
    arch: str = "small_cnn"
    epochs: int = 5
    image_size: Any = 64
    batch_size: int = 32
    learning_rate: float = 1e-3
    seed: int = 0
    shuffle_buffer: int = SHUFFLE_BUFFER
    train_split: str = "train"
    validation_split: str | None = None
    device: str = "auto"
    threads: ThreadOptions = dataclasses.field(default_factory=ThreadOptions)
    mixed_precision: bool = False
    overwrite: bool = False
    verbose: int = 2
    read: ReadOptions | None = None

    def __post_init__(self) -> None:
        _check(bool(self.data), f"data must be set, got {self.data!r}")
        _check(bool(self.output), f"output must be set, got {self.output!r}")
        _check(self.arch in TRAIN_ARCHS, f"arch must be one of {TRAIN_ARCHS}, got {self.arch!r}")
        _check_range("epochs", self.epochs, 1, INT32_MAX)
        size = _hw_size(self.image_size)
        _check(size is not None, "image_size must be set for training, got None")
        # The smallest side each arch runs on, found by building them: small_cnn's two
        # valid 3x3 convs and 2x2 / 4x4 pools leave no pixel below 14 (Keras then fails
        # with "output size would be zero or negative"); MobileNetV2 refuses < 32.
        least = {"small_cnn": 14, "mobilenet_v2": 32}[self.arch]
        _check(
            min(size) >= least,
            f"image_size must be at least {least} for arch {self.arch}, got {self.image_size!r}",
        )
        object.__setattr__(self, "image_size", size)
        _check_batch_size(self.batch_size)
        # Keras/numpy take seeds as uint32: refused here with the range, not as a traceback.
        _check_range("seed", self.seed, 0, MAX_SEED)
        _check_range("shuffle_buffer", self.shuffle_buffer, 0, INT32_MAX)
        _check(
            isinstance(self.learning_rate, (int, float)) and 0 < self.learning_rate < math.inf,
            f"learning_rate must be a finite number > 0, got {self.learning_rate!r}",
        )
        _check_runtime(self.device, self.threads)
        _check(self.verbose in (0, 1, 2), f"verbose must be 0, 1 or 2, got {self.verbose!r}")
        _check(
            self.read is None or isinstance(self.read, ReadOptions),
            f"read must be a ReadOptions or None, got {self.read!r}",
        )


READ_RESIZE_MODES = ("squash", "center_crop", "pad")
READ_RESIZE_METHODS = (
    "bilinear",
    "nearest",
    "bicubic",
    "area",
    "lanczos3",
    "lanczos5",
    "gaussian",
    "mitchellcubic",
)
READ_NORMALIZATIONS = ("unit", "symmetric", "imagenet", "none")
READ_DTYPES = ("float32", "bfloat16", "float16", "uint8")
READ_DATA_FORMATS = ("NHWC", "NCHW")
READ_DCT_METHODS = ("INTEGER_ACCURATE", "INTEGER_FAST")


def _parallelism(name: str, value: Any) -> None:
    _check(
        value is None
        or (isinstance(value, int) and not isinstance(value, bool))
        and (value == -1 or 0 < value <= MAX_THREADS),
        f"{name} must be None (no parallelism), -1 (AUTOTUNE) or an integer in "
        f"[1, {MAX_THREADS}], got {value!r}",
    )


MAX_READER_BUFFER_KB = 2**21  # 2 GiB a file: far beyond any gain, short of int32 bytes


@dataclasses.dataclass(frozen=True)
class ReadOptions:
    """How `tfclassify.make_dataset` reads, decodes and batches shards.

    -1 means `tf.data.AUTOTUNE` wherever it is allowed (`ReadOptions.AUTOTUNE`).

    Attributes:
      split: split read from a dataset directory (ignored for globs and path lists).
      image_size: output (height, width); an int means square.
      batch_size: images per batch.
      drop_remainder: drop a last, smaller batch (gives a fully static batch dim).
      resize: `squash` (to height x width, aspect ignored), `center_crop` (aspect-
        preserving resize to cover image_size / crop_fraction, then central crop) or
        `pad` (aspect-preserving resize to fit, then centred black padding).
      crop_fraction: `center_crop` only: share of the resized image kept; 0.875 is the
        usual ImageNet eval transform (resize 256, crop 224); 1.0 crops only the excess.
      resize_method: a `tf.image.ResizeMethod` name.
      antialias: low-pass filter when downsampling (slower, fewer aliasing artefacts).
      normalize: `unit` [0, 1] (default: what Keras `Rescaling(1/255)` models expect),
        `symmetric` [-1, 1], `imagenet` ((x/255 - mean) / std), `none` [0, 255].
      dtype: `float32`, `bfloat16`, `float16`, or `uint8` (only with normalize `none`).
      data_format: `NHWC` or `NCHW` (transposed after batching; NCHW is for GPUs).
      with_labels: include `label` (int64, -1 when a record has none) in each element.
      shuffle_files: shuffle the shard order (each iteration, seeded by `seed`).
      shuffle_buffer: records in the shuffle buffer; 0 disables record shuffling.
      seed: seed of both shuffles; None draws a fresh order each run.
      cycle_length: shards read at once; None means min(shards, CPUs).
      block_length: consecutive records taken from one shard before the next. The
        default path takes them in runs of 16 x block_length (it parses records in
        groups of 16); the skip_errors path in runs of block_length.
      interleave_parallelism: threads reading shards (-1: AUTOTUNE). None reads in
        the consumer's thread, only when it asks for the next element (with
        `map_parallelism=None` and `prefetch=0`: nothing runs ahead, as in `infer`'s
        sequential and batch modes). The record order is the same either way.
      map_parallelism: images decoded at once (-1: AUTOTUNE, up to the CPU count;
        None: one at a time in the consumer's thread).
      prefetch: batches prepared ahead (-1: AUTOTUNE, 0: none).
      deterministic: element order of the parallel stages; None keeps tf.data's
        default (deterministic). False lets fast shards overtake slow ones, and, on
        the default path, quickly decoded images overtake slow ones. The skip_errors
        path always decodes in order (its bad-record accounting relies on it).
      private_threadpool_size: tf.data threads for this pipeline; None uses the
        shared pool.
      max_intra_op_parallelism: threads one tf.data op may use; None keeps the default.
      autotune: run tf.data's autotuning model, a background thread that retunes
        parallelism and buffer sizes during a pass. Off by default: while it runs,
        the end of a pass (and deleting an iterator) waits for the thread's next
        wake-up, at 10 ms x (2^k - 1) after the start (... 0.63, 1.27, 2.55, 5.1 s,
        the period doubling up to a minute); measured in half the passes, +0.6 s on
        a 0.7 s pass and +1.1 s on a 1.6 s one (TF 2.21). Without it AUTOTUNE still
        means something: parallel stages run min(16, tf.data's pool size: the CPU
        count unless `private_threadpool_size`) calls at once, and prefetch grows its
        buffer when the consumer waits (tf.data's settings before any tuning).
      ram_budget_mb: the autotuning model's memory cap for buffers (needs
        `autotune`); None keeps tf.data's default (half the host RAM).
      graph_rewrites: tf.data's default static optimizations (map/batch fusion,
        injected prefetches, ...). Off by default: the pipeline already has the
        parallel stages and the prefetch they would add, and the rewrites cost ~0.1 s
        at every iterator start (measured 5-10% slower passes over 2,000 images).
      reader_buffer_kb: read buffer of each open shard (cycle_length of them, plus the
        ones interleave opens ahead).
      allow_ratio_decode: decode JPEGs at 1/2, 1/4 or 1/8 scale in the DCT domain
        when the stored image is at least that many times the resize target.
      dct_method: JPEG IDCT, `INTEGER_ACCURATE` (libjpeg's and Pillow's default) or
        `INTEGER_FAST`.
      skip_errors: skip, count and log corrupt records instead of failing on the first.
    """

    AUTOTUNE = -1  # unannotated: a class constant, not a field

    split: str = "train"
    image_size: Any = 224
    batch_size: int = 32
    drop_remainder: bool = False
    resize: str = "center_crop"
    crop_fraction: float = 0.875
    resize_method: str = "bilinear"
    antialias: bool = False
    normalize: str = "unit"
    dtype: str = "float32"
    data_format: str = "NHWC"
    with_labels: bool = True
    shuffle_files: bool = False
    shuffle_buffer: int = 0
    seed: int | None = None
    cycle_length: int | None = None
    block_length: int = 1
    interleave_parallelism: int | None = -1
    map_parallelism: int | None = -1
    prefetch: int = -1
    deterministic: bool | None = None
    private_threadpool_size: int | None = None
    max_intra_op_parallelism: int | None = None
    autotune: bool = False
    ram_budget_mb: int | None = None
    graph_rewrites: bool = False
    reader_buffer_kb: int = 256
    allow_ratio_decode: bool = True
    dct_method: str = "INTEGER_ACCURATE"
    skip_errors: bool = False

    def __post_init__(self) -> None:
        _check(bool(self.split), f"split must be non-empty, got {self.split!r}")
        size = _hw_size(self.image_size)
        _check(size is not None, "image_size must be set, got None")
        object.__setattr__(self, "image_size", size)
        _check_batch_size(self.batch_size)
        _check(
            self.resize in READ_RESIZE_MODES,
            f"resize must be one of {READ_RESIZE_MODES}, got {self.resize!r}",
        )
        _check(
            isinstance(self.crop_fraction, (int, float)) and 0 < self.crop_fraction <= 1,
            f"crop_fraction must be in (0, 1], got {self.crop_fraction!r}",
        )
        _check(
            self.resize_method in READ_RESIZE_METHODS,
            f"resize_method must be one of {READ_RESIZE_METHODS}, got {self.resize_method!r}",
        )
        _check(
            self.normalize in READ_NORMALIZATIONS,
            f"normalize must be one of {READ_NORMALIZATIONS}, got {self.normalize!r}",
        )
        _check(self.dtype in READ_DTYPES, f"dtype must be one of {READ_DTYPES}, got {self.dtype!r}")
        _check(
            self.dtype != "uint8" or self.normalize == "none",
            f"dtype 'uint8' holds only raw pixel values: it needs normalize='none', "
            f"got normalize={self.normalize!r}",
        )
        _check(
            self.data_format in READ_DATA_FORMATS,
            f"data_format must be one of {READ_DATA_FORMATS}, got {self.data_format!r}",
        )
        _check_range("shuffle_buffer", self.shuffle_buffer, 0, INT32_MAX)
        _check_range("seed", self.seed, 0, MAX_SEED, optional=True)
        _check_range("cycle_length", self.cycle_length, 1, INT32_MAX, optional=True)
        _check_range("block_length", self.block_length, 1, INT32_MAX)
        _parallelism("interleave_parallelism", self.interleave_parallelism)
        _parallelism("map_parallelism", self.map_parallelism)
        _check(
            isinstance(self.prefetch, int)
            and not isinstance(self.prefetch, bool)
            and -1 <= self.prefetch <= INT32_MAX,
            f"prefetch must be -1 (AUTOTUNE), 0 (off) or an integer in [1, {INT32_MAX}], "
            f"got {self.prefetch!r}",
        )
        _check(
            self.deterministic in (None, True, False),
            f"deterministic must be None, True or False, got {self.deterministic!r}",
        )
        for name in ("private_threadpool_size", "max_intra_op_parallelism"):
            _check_range(name, getattr(self, name), 1, MAX_THREADS, optional=True)
        _check_range("ram_budget_mb", self.ram_budget_mb, 1, INT32_MAX, optional=True)
        _check(
            self.ram_budget_mb is None or self.autotune,
            f"ram_budget_mb={self.ram_budget_mb} caps the autotuning model's buffers: "
            "it needs autotune=True",
        )
        _check_range("reader_buffer_kb", self.reader_buffer_kb, 1, MAX_READER_BUFFER_KB)
        _check(
            self.dct_method in READ_DCT_METHODS,
            f"dct_method must be one of {READ_DCT_METHODS}, got {self.dct_method!r}",
        )
