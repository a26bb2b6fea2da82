"""One load/predict interface over SavedModel, Keras, LiteRT and OpenVINO models.

Shaped like Apache Beam's `ModelHandler` (`load_model()` then
`run_inference(batch, model)`): a backend only says how to load its model and how
to call it on a batch; everything else (input checks, dtype casts, the
logits/probabilities decision, labels) lives once in `Predictor`.

The model call is a `tf.function` with a fixed `input_signature` whose batch
dimension is None, so it is traced exactly once: batch sizes 1, 32 and a short
last batch all reuse the same graph, and pipelined inference never retraces.
That graph is then frozen for inference (`freeze=True`, the default): variables
become constants, so TF's graph optimizer can fold batch-norm and fuse ops as the
TFLite and TF-TRT converters do (figures: benchmarks/NOTES.md).

LiteRT (`.tflite`, `tfclassify.models.litert`) and OpenVINO (`.xml` IR, or a
SavedModel with `runtime="openvino"`, `tfclassify.models.openvino`) run outside TF:
their backends override `run_inference`, and an integer model's input scale and
zero point are applied by `Quantization`, in the tf.data graph or in `predict`, so
callers pass the same float images to every runtime.

Usage:
  p = Predictor.load("out/model/saved_model")
  probs = p.predict(images)          # np.float32 [B, num_classes], rows sum to 1
"""

from __future__ import annotations

import abc
import dataclasses
import importlib
import json
import os
import zipfile
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
from absl import logging

from tfclassify.core import metadata
from tfclassify.core.errors import InputError, OptionsError
from tfclassify.core.options import MODEL_OUTPUTS, MODEL_RUNTIMES, OPENVINO_PRECISIONS
from tfclassify.models import runtime as tf_runtime
from tfclassify.models.architectures import KERAS_FILE, SAVED_MODEL_DIR

LABELS_FILE = metadata.LABELS_FILE
# What `tfclassify.quantize` writes in its output dir; its "selected" entry names the
# model file (relative to the dir, or the float model's own path) and its precision.
QUANTIZE_REPORT = "report.json"

# Output names that tell whether a model ends in a softmax.
_PROB_HINTS = ("prob", "softmax", "score")
_LOGIT_HINTS = ("logit",)


def _tf():
    import tensorflow as tf

    return tf


def model_kind(path: str) -> str:
    """`saved_model`, `keras` or `tflite`, from what is at `path`.

    Raises:
      InputError: nothing at `path`, or not a model format tfclassify knows.
    """
    if not os.path.exists(path):
        raise InputError(f"model not found: {path}")
    if os.path.isdir(path):
        if os.path.isfile(os.path.join(path, "saved_model.pb")):
            return "saved_model"
        raise InputError(
            f"{path} is a directory without saved_model.pb: not a SavedModel "
            f"(a tfclassify model dir holds {SAVED_MODEL_DIR}/ and {KERAS_FILE})"
        )
    ext = os.path.splitext(path)[1].lower()
    if ext in (".keras", ".h5"):
        return "keras"
    if ext == ".tflite":
        return "tflite"
    if ext == ".xml":
        return "openvino"
    raise InputError(
        f"{path}: unknown model format {ext or '(no extension)'!r}; expected a SavedModel "
        "directory, a .keras file, a .tflite file or an OpenVINO .xml"
    )


# Backends outside this module, imported when a model needs them (their runtimes are
# optional extras).
_BACKEND_MODULES = {
    "tflite": "tfclassify.models.litert",
    "openvino": "tfclassify.models.openvino",
}
# The runtime each model format runs on unless another is asked for, and the others
# that can run it.
_RUNTIMES = {
    "saved_model": ("tensorflow", "openvino"),
    "keras": ("tensorflow", "openvino"),
    "tflite": ("litert",),
    "openvino": ("openvino",),
}


@dataclasses.dataclass(frozen=True)
class Quantization:
    """An integer model input or output: real = (q - zero_point) * scale."""

    scale: float
    zero_point: int
    dtype: str  # "int8" or "uint8"

    def quantize(self, x: Any) -> Any:
        """Float images -> the model's integers; a tf.Tensor stays one (in-graph)."""
        info = np.iinfo(self.dtype)
        if isinstance(x, np.ndarray):
            q = np.round(x.astype(np.float32) / np.float32(self.scale)) + self.zero_point
            return np.clip(q, info.min, info.max).astype(self.dtype)
        tf = _tf()
        q = tf.round(tf.cast(x, tf.float32) / self.scale) + float(self.zero_point)
        return tf.cast(tf.clip_by_value(q, float(info.min), float(info.max)), self.dtype)

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        return (q.astype(np.float32) - np.float32(self.zero_point)) * np.float32(self.scale)


def quantize_selection(path: str) -> tuple[str, str | None] | None:
    """(model path, OpenVINO precision or None) that a `tfclassify.quantize` output
    dir selected; None when `path` is not such a dir.

    Raises:
      InputError: a report.json that is not readable, or that selected nothing.
    """
    report = os.path.join(path, QUANTIZE_REPORT)
    if not os.path.isfile(report) or os.path.isfile(os.path.join(path, "saved_model.pb")):
        return None
    try:
        with open(report, encoding="utf-8") as f:
            selected = json.load(f).get("selected")
    except (OSError, ValueError, AttributeError) as e:
        raise InputError(f"cannot read {report}: {e}") from None
    if not isinstance(selected, dict) or not isinstance(selected.get("path"), str):
        raise InputError(
            f"{path} is a tfclassify.quantize output that selected no variant (select "
            "'none'); pass one of its model files"
        )
    return os.path.join(path, selected["path"]), selected.get("precision")


def resolve_model_path(path: str) -> str:
    """A `tfclassify.quantize` output dir resolves to the model it selected, a
    tfclassify model dir (from `train`) to its SavedModel; else `path`."""
    selected = quantize_selection(path)
    if selected is not None:
        path = selected[0]
    sub = os.path.join(path, SAVED_MODEL_DIR)
    if (
        os.path.isdir(path)
        and not os.path.isfile(os.path.join(path, "saved_model.pb"))
        and os.path.isfile(os.path.join(sub, "saved_model.pb"))
    ):
        return sub
    return path


def read_labels(model_path: str) -> tuple[str, ...] | None:
    """`labels.txt` inside a SavedModel dir, or beside the model (file or dir); else None."""
    candidates = []
    if os.path.isdir(model_path):
        candidates.append(os.path.join(model_path, LABELS_FILE))
    candidates.append(os.path.join(os.path.dirname(os.path.abspath(model_path)), LABELS_FILE))
    for c in candidates:
        if os.path.isfile(c):
            try:
                with open(c, encoding="utf-8") as f:
                    labels = tuple(line.rstrip("\n") for line in f if line.strip())
            except UnicodeDecodeError as e:
                # A user's file: one line naming it, not a decoder traceback.
                raise InputError(
                    f"{c} is not UTF-8 text (byte {e.start}): {LABELS_FILE} must list "
                    "class names in UTF-8, one per line"
                ) from None
            return labels or None
    return None


def load_keras(path: str) -> Any:
    """`keras.models.load_model(path)`, with a file that is not a model named as such.

    A `.keras` file is a zip archive; Keras reports any other file under that name as
    "File not found", which misleads when the file is right there.

    Raises:
      InputError: not a zip archive, or Keras cannot load it.
    """
    import keras

    if path.lower().endswith(".keras") and not zipfile.is_zipfile(path):
        raise InputError(f"not a valid .keras file: {path}")
    try:
        return keras.models.load_model(path, compile=False)
    except (OSError, ValueError, TypeError) as e:
        raise InputError(f"cannot load Keras model {path}: {e}") from e


def _channels_first(shape: tuple[int | None, ...]) -> bool:
    """[H, W, C] vs [C, H, W] without batch: C is the small axis (1, 3 or 4)."""
    if len(shape) != 3:
        return False
    return shape[-1] not in (1, 3, 4) and shape[0] in (1, 3, 4)


def softmax(x: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64 (stable), returned as float32."""
    z = x.astype(np.float64) - np.max(x, axis=-1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def looks_like_probabilities(x: np.ndarray, atol: float = 1e-3) -> bool:
    """All rows non-negative and summing to 1 (within `atol`)."""
    if x.size == 0:
        return False
    return bool(np.all(x >= -1e-6) and np.allclose(x.sum(axis=-1), 1.0, atol=atol))


class Predictor(abc.ABC):
    """A loaded image classifier: `predict(images) -> probabilities`.

    Build one with `Predictor.load(path, ...)`, which picks the backend from the
    path. Backends implement `load_model` and `run_inference` only.

    Attributes:
      path: the model file or SavedModel directory.
      device: TF device the model runs on ("/CPU:0" or "/GPU:0"); LiteRT and
        OpenVINO run on the CPU.
      outputs: `probabilities` or `logits` once resolved (`auto` until the first
        batch when the model itself does not say).
      runtime: `tensorflow`, `litert` or `openvino`.
      precision: what the model computes in: `f32`; for LiteRT `dynamic-range`,
        `float16` or `int8` by its tensors; for OpenVINO the precision set
        (`f32`, `bf16`) or `int8` for a quantized IR.
      threads: the runtime's own thread count (LiteRT, OpenVINO); None for TF,
        whose pools `runtime.effective_threads()` reports.
      input_quantization: how float images become an integer model's input, or None.
    """

    kind: ClassVar[str] = ""
    runtime: ClassVar[str] = "tensorflow"
    input_name: str = ""  # the model's input (signature argument / Keras input) name
    output_name: str = ""  # the output read as class scores
    _backends: ClassVar[dict[str, type[Predictor]]] = {}

    def __init__(
        self,
        path: str,
        *,
        signature: str = "serving_default",
        device: str = "auto",
        outputs: str = "auto",
        freeze: bool = True,
        precision: str | None = None,
        threads: int | None = None,
    ) -> None:
        if outputs not in MODEL_OUTPUTS:
            raise OptionsError(f"outputs must be one of {MODEL_OUTPUTS}, got {outputs!r}")
        if precision is not None and precision not in OPENVINO_PRECISIONS:
            raise OptionsError(f"precision must be one of {OPENVINO_PRECISIONS}, got {precision!r}")
        if precision is not None and self.runtime != "openvino":
            raise OptionsError(f"precision applies to the OpenVINO runtime, not {self.runtime}")
        self.path = path
        self.signature = signature  # used by backends with named signatures
        if self.runtime != "tensorflow" and device == "gpu":
            raise OptionsError(f"the {self.runtime} runtime runs on the CPU; pass device='cpu'")
        if self.runtime == "tensorflow":
            self.device = tf_runtime.resolve_device(device)
        else:
            self.device = tf_runtime.INPUT_DEVICE
        self.outputs = outputs
        self.precision = precision or "f32"
        self.threads = threads
        self.input_quantization: Quantization | None = None
        self._output_step = 0.0  # a quantized output's step (its scale); 0: float
        self._input_shape: tuple[int | None, ...] = ()
        self._input_dtype = "float32"
        self._num_classes: int | None = None
        self._fn: Callable[[Any], Any] | None = None
        self._call: Callable[[Any], Any] | None = None  # _fn, frozen when `freeze`
        self._frozen: Any = None  # _fn's graph with its variables as constants
        self.freeze = freeze
        self._labels = read_labels(path)
        with _tf().device(self.device):
            self.model = self.load_model()
        if self._labels is not None and self._num_classes not in (None, len(self._labels)):
            raise InputError(
                f"{LABELS_FILE} beside {path} lists {len(self._labels)} labels but the model "
                f"outputs {self._num_classes} classes"
            )

    # ---- construction ---------------------------------------------------------------

    @classmethod
    def register(cls, kind: str) -> Callable[[type[Predictor]], type[Predictor]]:
        """Class decorator adding a backend for `model_kind(path) == kind`."""

        def deco(backend: type[Predictor]) -> type[Predictor]:
            backend.kind = kind
            cls._backends[kind] = backend
            return backend

        return deco

    @classmethod
    def load(
        cls,
        path: str,
        signature: str = "serving_default",
        device: str = "auto",
        outputs: str = "auto",
        freeze: bool = True,
        runtime: str = "auto",
        precision: str | None = None,
        threads: int | None = None,
    ) -> Predictor:
        """Loads the model at `path` with the backend its format (or `runtime`) needs.

        Args:
          path: SavedModel directory, `.keras`/`.h5` file, `.tflite` file, OpenVINO
            `.xml` (its `.bin` beside it), a tfclassify model dir (uses its
            `saved_model/`) or a `tfclassify.quantize` output dir (uses the variant
            it selected).
          signature: SavedModel signature to call (ignored for other formats).
          device: `auto`, `cpu` or `gpu` (LiteRT and OpenVINO: the CPU).
          outputs: `auto`, `probabilities` or `logits`.
          freeze: run a TF model call as a graph with its variables folded into
            constants (faster; same outputs up to float rounding). False calls the
            model's own graph, reading its variables.
          runtime: `auto` (by format), `tensorflow`, `litert` or `openvino`.
          precision: OpenVINO's inference precision, `f32` or `bf16`; None: `f32`
            (for a quantize output dir: the precision its selection was measured at).
          threads: LiteRT's and OpenVINO's thread count; None: the CPUs this
            process may use. (TF's pools are set by `runtime.apply_threads`.)

        Raises:
          InputError: missing path, unknown format, unknown signature, a model
            that does not take one image batch, or a runtime that is not installed.
          OptionsError: bad device/outputs/runtime/precision.
        """
        if runtime not in MODEL_RUNTIMES:
            raise OptionsError(f"runtime must be one of {MODEL_RUNTIMES}, got {runtime!r}")
        selected = quantize_selection(path)
        if selected is not None and precision is None:
            precision = selected[1]  # the precision the variant was measured at
        path = resolve_model_path(path)
        kind = model_kind(path)
        allowed = _RUNTIMES[kind]
        chosen = allowed[0] if runtime == "auto" else runtime
        if chosen not in allowed:
            raise OptionsError(
                f"{path}: a {kind} model runs on {' or '.join(allowed)}, not {runtime}"
            )
        if chosen == "tensorflow":
            # As `infer` does: before a first TF import, if this is it.
            tf_runtime.prefer_onednn()
        backend = _backend("openvino" if chosen == "openvino" else kind)
        return backend(
            path,
            signature=signature,
            device=device,
            outputs=outputs,
            freeze=freeze,
            precision=precision,
            threads=threads,
        )

    # ---- backend interface (cf. Beam ModelHandler) -----------------------------------

    @classmethod
    @abc.abstractmethod
    def describe_io(cls, path: str) -> list[str]:
        """Lines listing the model's inputs and outputs (shape, dtype) for `describe`."""

    @abc.abstractmethod
    def load_model(self) -> Any:
        """Loads the model; sets `_input_shape`, `_input_dtype`, `_num_classes`."""

    def run_inference(self, batch: Any, model: Any) -> np.ndarray:
        """Raw model outputs [B, num_classes] for a batch already of the input dtype.

        By default the call `_compile` set up; a backend without a TF graph overrides it.
        """
        return self._call(batch).numpy()  # type: ignore[misc]

    # ---- public surface --------------------------------------------------------------

    @property
    def input_shape(self) -> tuple[int | None, ...]:
        """Per-image input shape: (H, W, C), or (C, H, W) for channels-first models."""
        return self._input_shape

    @property
    def input_dtype(self) -> str:
        """The dtype of the images callers pass (float for a quantized model)."""
        return self._input_dtype

    @property
    def model_input_dtype(self) -> str:
        """What the model itself takes: `input_quantization.dtype`, else `input_dtype`."""
        q = self.input_quantization
        return q.dtype if q is not None else self._input_dtype

    @property
    def expects_channels_first(self) -> bool:
        return _channels_first(self._input_shape)

    @property
    def data_format(self) -> str:
        return "NCHW" if self.expects_channels_first else "NHWC"

    @property
    def image_size(self) -> tuple[int, int] | None:
        """(height, width) the model takes, or None when it accepts any size."""
        s = self._input_shape
        h, w = (s[1], s[2]) if self.expects_channels_first else (s[0], s[1])
        return (h, w) if h and w else None

    @property
    def num_classes(self) -> int | None:
        return self._num_classes

    @property
    def labels(self) -> tuple[str, ...] | None:
        """Class names from `labels.txt` beside the model, or None."""
        return self._labels

    def predict(self, images: Any) -> np.ndarray:
        """Class probabilities for a batch (or one image).

        Args:
          images: array/tensor [B, *input_shape] (or one image of `input_shape`);
            cast to the model's dtype if needed. Float images for a quantized
            model are quantized here; its own integers pass as they are.

        Returns:
          float32 array [B, num_classes]; each row sums to 1.

        Raises:
          InputError: images whose shape does not fit the model input.
        """
        tf = _tf()
        if isinstance(images, tf.Tensor) and self.runtime == "tensorflow":
            x = images
        else:
            x = np.asarray(images)
        if len(x.shape) == len(self._input_shape):
            x = x[None, ...]
        got = tuple(x.shape[1:])
        if len(got) != len(self._input_shape) or any(
            want is not None and want != g for want, g in zip(self._input_shape, got, strict=True)
        ):
            raise InputError(
                f"images of shape {tuple(x.shape)} do not fit model input "
                f"[batch, {', '.join(str(d) for d in self._input_shape)}] of {self.path}"
            )
        dtype = tf.as_dtype(x.dtype)
        q = self.input_quantization
        if q is not None and dtype.is_floating:
            x = q.quantize(x)
        elif dtype.name != self.model_input_dtype:
            want = self.model_input_dtype
            x = tf.cast(x, want) if self.runtime == "tensorflow" else x.astype(want)
        raw = np.asarray(self.run_inference(x, self.model), dtype=np.float32)
        return self._to_probabilities(raw)

    __call__ = predict

    def warmup(self, image_size: tuple[int, int] | None = None) -> None:
        """Runs the compiled call once on a zero image so timing excludes the trace.

        Args:
          image_size: (height, width) for models that accept any size.
        """
        shape = list(self._input_shape)
        hw = (1, 2) if self.expects_channels_first else (0, 1)
        for axis, size in zip(hw, image_size or (None, None), strict=True):
            if shape[axis] is None:
                shape[axis] = size or 32
        shape = [d or 1 for d in shape]
        # run_inference, not predict: a zero image must not decide logits vs probabilities.
        self.run_inference(np.zeros([1, *shape], self.model_input_dtype), self.model)

    @property
    def trace_count(self) -> int:
        """Times the model call `run_inference` runs was traced (1 after the first
        predict, however many batch sizes follow).

        Counted on `_call`, not `_fn`: when frozen, `_fn` was traced once to be frozen
        and is never called, so its count would hold at 1 whatever the call did.
        """
        call = self._call
        return call.experimental_get_tracing_count() if call is not None else 0

    def describe(self) -> str:
        """Human-readable inputs/outputs of this model (see module `describe`)."""
        return describe(self.path)

    def frozen_graph(self) -> Any:
        """The model call as a TF graph with its variables folded into constants: a
        concrete function, images [B, *input_shape] -> raw outputs [B, num_classes].
        For tools that read the model's layers from its graph (`models.gradcam`).

        Raises:
          InputError: a model that does not run on TensorFlow (LiteRT, OpenVINO), or
            whose graph cannot be frozen.
        """
        if self._fn is None:
            raise InputError(f"{self.path} runs on {self.runtime}: it has no TensorFlow graph")
        if self._frozen is None:
            try:
                self._frozen = _freeze(self._fn)
            except Exception as e:  # as in `_compile`: state that is not a variable
                raise InputError(f"{self.path}: cannot freeze its graph ({e})") from e
        return self._frozen

    # ---- helpers ---------------------------------------------------------------------

    def _compile(self, call: Callable[[Any], Any]) -> None:
        """Sets `_fn` (`call` as a tf.function traced once: fixed signature, batch dim
        None) and `_call`, what `run_inference` runs: `_fn`, frozen when `freeze`."""
        tf = _tf()
        device = self.device
        spec = tf.TensorSpec([None, *self._input_shape], self._input_dtype, name="images")

        def compiled(body: Callable[[Any], Any]) -> Any:
            @tf.function(input_signature=[spec], autograph=False)  # plain graph code
            def fn(x):
                with tf.device(device):
                    return body(x)

            return fn

        fn = compiled(call)
        self._fn = self._call = fn
        if not self.freeze:
            return
        try:
            frozen = _freeze(fn)
        except Exception as e:  # e.g. lookup tables or other state that is not a variable
            logging.warning("%s: cannot freeze (%s); calling the model as saved", self.path, e)
            self.freeze = False
            return
        self._frozen = frozen

        # Called through a tf.function of its own, not directly: called as is, the
        # frozen concrete function runs the tiny CNN slower than the unfrozen model
        # (benchmarks/NOTES.md). The wrapper also takes numpy and returns one tensor.
        self._call = compiled(lambda x: frozen(x)[0])

    def _to_probabilities(self, raw: np.ndarray) -> np.ndarray:
        if self.outputs == "auto":
            # Decided once, on the first batch, and kept: a per-batch guess could
            # differ between modes with different batch sizes.
            # Each quantized probability is off by up to half a step.
            atol = max(1e-3, raw.shape[-1] * self._output_step)
            self.outputs = "probabilities" if looks_like_probabilities(raw, atol) else "logits"
        if self.outputs == "logits":
            return softmax(raw)
        if self._output_step:  # rounded probabilities: rescaled to sum to 1
            sums = raw.sum(axis=-1, keepdims=True)
            return np.where(sums > 0, raw / np.where(sums > 0, sums, 1), 1 / raw.shape[-1])
        return raw

    def _hint_outputs(self, hint: str | None) -> None:
        if self.outputs == "auto" and hint is not None:
            self.outputs = hint

    def _set_io(self, shape: Any, dtype: Any, out_shape: Any, what: str) -> None:
        tf = _tf()
        dims = tuple(shape)
        if len(dims) != 4:
            raise InputError(
                f"{self.path}: {what} takes input of shape {dims}; tfclassify needs an image "
                "batch [batch, height, width, channels] (or [batch, channels, height, width])"
            )
        self._input_shape = tuple(None if d is None else int(d) for d in dims[1:])
        self._input_dtype = tf.as_dtype(dtype).name
        out = tuple(out_shape)
        if len(out) != 2:
            raise InputError(
                f"{self.path}: {what} outputs shape {out}; tfclassify needs [batch, num_classes]"
            )
        self._num_classes = None if out[-1] is None else int(out[-1])


def _backend(kind: str) -> type[Predictor]:
    """The backend class for a model format, importing its module if it is elsewhere."""
    module = _BACKEND_MODULES.get(kind)
    if module is not None:
        importlib.import_module(module)  # registers the backend
    return Predictor._backends[kind]


def _freeze(fn: Any) -> Any:
    """`fn`'s concrete function with its variables folded into constants."""
    # TF's own freezing step (the one its TFLite and TF-TRT converters run); not part
    # of TF's public API, so a TF that moves it only loses the speed-up.
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    return convert_variables_to_constants_v2(fn.get_concrete_function())


def _load_saved_model(path: str) -> Any:
    tf = _tf()
    try:
        return tf.saved_model.load(path)
    except (OSError, ValueError, tf.errors.OpError) as e:
        raise InputError(f"cannot load SavedModel {path}: {e}") from e


def _hint_from_name(name: str) -> str | None:
    n = name.lower()
    if any(h in n for h in _LOGIT_HINTS):
        return "logits"
    if any(h in n for h in _PROB_HINTS):
        return "probabilities"
    return None


def _signature_io(fn: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(inputs, outputs) of a concrete signature function: name -> TensorSpec."""
    args, kwargs = fn.structured_input_signature
    inputs = dict(kwargs)
    for i, spec in enumerate(args):
        inputs[getattr(spec, "name", None) or f"arg_{i}"] = spec
    outputs = fn.structured_outputs
    if not isinstance(outputs, dict):
        outputs = {"output_0": outputs}
    return inputs, dict(outputs)


def _pick_output(outputs: dict[str, Any], path: str, signature: str) -> str:
    if len(outputs) == 1:
        return next(iter(outputs))
    for hints in (_PROB_HINTS, _LOGIT_HINTS):
        named = [k for k in outputs if any(h in k.lower() for h in hints)]
        if len(named) == 1:
            return named[0]
    raise InputError(
        f"{path}: signature {signature!r} has several outputs {sorted(outputs)} and none is "
        "clearly the class scores (name containing 'prob' or 'logit')"
    )


@Predictor.register("saved_model")
class SavedModelPredictor(Predictor):
    """A SavedModel called through one of its signatures (default `serving_default`)."""

    @classmethod
    def describe_io(cls, path: str) -> list[str]:
        sigs = dict(_load_saved_model(path).signatures)
        lines = [] if sigs else ["  no signatures"]
        for name in sorted(sigs):
            inputs, outputs = _signature_io(sigs[name])
            lines.append(f"  signature {name!r}:")
            lines += [f"    input  {k}: {_spec_str(v)}" for k, v in sorted(inputs.items())]
            lines += [f"    output {k}: {_spec_str(v)}" for k, v in sorted(outputs.items())]
        return lines

    def load_model(self) -> Any:
        loaded = _load_saved_model(self.path)
        sigs = dict(loaded.signatures)
        if self.signature not in sigs:
            raise InputError(
                f"{self.path} has no signature {self.signature!r}; available: "
                f"{sorted(sigs) or 'none'}"
            )
        fn = sigs[self.signature]
        inputs, outputs = _signature_io(fn)
        if len(inputs) != 1:
            raise InputError(
                f"{self.path}: signature {self.signature!r} takes {len(inputs)} inputs "
                f"{sorted(inputs)}; tfclassify needs exactly one image input"
            )
        self.input_name, spec = next(iter(inputs.items()))
        self.output_name = _pick_output(outputs, self.path, self.signature)
        self._set_io(
            spec.shape, spec.dtype, outputs[self.output_name].shape, f"signature {self.signature!r}"
        )
        self._hint_outputs(_hint_from_name(self.output_name))
        name, out = self.input_name, self.output_name
        self._compile(lambda x: fn(**{name: x})[out])
        # Keep `loaded` alive: the signature function does not own the variables.
        self._loaded = loaded
        return fn


@Predictor.register("keras")
class KerasPredictor(Predictor):
    """A `.keras` (or legacy `.h5`) model, called in inference mode."""

    @classmethod
    def describe_io(cls, path: str) -> list[str]:
        model = load_keras(path)
        lines = [f"  input  {t.name}: {_spec_str(t)}" for t in model.inputs]
        for name, t in zip(_keras_output_names(model), model.outputs, strict=True):
            lines.append(f"  output {name}: {_spec_str(t)}")
        return lines

    def load_model(self) -> Any:
        model = load_keras(self.path)
        if len(model.inputs) != 1 or len(model.outputs) != 1:
            raise InputError(
                f"{self.path}: Keras model has {len(model.inputs)} inputs and "
                f"{len(model.outputs)} outputs; tfclassify needs one image input and one "
                "class-score output"
            )
        inp = model.inputs[0]
        self.input_name, self.output_name = inp.name, _keras_output_names(model)[0]
        self._set_io(inp.shape, inp.dtype, model.outputs[0].shape, "Keras model")
        self._hint_outputs(_keras_output_kind(model))
        self._compile(lambda x: model(x, training=False))
        return model


def _keras_output_names(model: Any) -> list[str]:
    """Output names of a functional model; a Sequential (no `output_names` in Keras 3)
    is named by its last layer."""
    return list(getattr(model, "output_names", None) or [model.layers[-1].name])


def _keras_output_kind(model: Any) -> str | None:
    """`probabilities` if the last layer is a softmax, `logits` if linear, else None."""
    import keras

    last = model.layers[-1]
    act = getattr(last, "activation", None)
    if isinstance(last, keras.layers.Softmax) or act is keras.activations.softmax:
        return "probabilities"
    if act is keras.activations.linear:
        return "logits"
    return _hint_from_name(last.name)


def _spec_str(spec: Any) -> str:
    shape = "[" + ", ".join("?" if d is None else str(d) for d in spec.shape) + "]"
    dtype = spec.dtype if isinstance(spec.dtype, str) else spec.dtype.name  # Keras 3: str
    return f"{shape} {dtype}"


def describe(path: str) -> str:
    """Lists a model's signatures (SavedModel) or inputs/outputs (other formats).

    Args:
      path: as for `Predictor.load`.

    Returns:
      Multi-line text: per signature, each input and output with shape and dtype.

    Raises:
      InputError: missing path or unknown format.
    """
    path = resolve_model_path(path)
    kind = model_kind(path)
    lines = [f"{path} ({kind})", *_backend(kind).describe_io(path)]
    labels = read_labels(path)
    if labels is not None:
        shown = ", ".join(labels[:10]) + (", ..." if len(labels) > 10 else "")
        lines.append(f"  labels ({len(labels)}): {shown}")
    return "\n".join(lines)
