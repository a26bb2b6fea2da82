"""OpenVINO models behind `Predictor`: an IR (`.xml`), or a SavedModel / `.keras` converted.

OpenVINO's CPU plugin picks its own inference precision (bf16 on CPUs with AMX or
AVX-512-BF16), so tfclassify always sets it: `f32` unless `bf16` is asked for, and
`bf16` only where the CPU has it. What ran is read back from the compiled model and
reported; an IR with quantized layers (FakeQuantize, as NNCF writes them) is `int8`.

The model is compiled for one stream and `threads` threads (else the CPUs this process
may use): tfclassify calls it synchronously, one batch at a time. The batch dimension
stays dynamic; a model that takes any image size is compiled once per size it sees.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from tfclassify.core.cpus import available_cpus
from tfclassify.core.errors import InputError, MissingDependencyError, OptionsError
from tfclassify.models.predictor import (
    Predictor,
    _hint_from_name,
    _keras_output_kind,
    _keras_output_names,
    _load_saved_model,
    load_keras,
    model_kind,
)

DEVICE = "CPU"
# Op types that make a model quantized: NNCF's post-training quantization writes
# FakeQuantize (the CPU plugin runs those layers in int8).
_QUANTIZED_OPS = frozenset({"FakeQuantize"})


def openvino_module() -> Any:
    """The `openvino` package, or one line saying which install brings it."""
    try:
        import openvino
    except ImportError:
        raise MissingDependencyError("OpenVINO", "openvino", "openvino") from None
    return openvino


@functools.cache
def _core() -> Any:
    return openvino_module().Core()


def cpu_capabilities() -> tuple[str, ...]:
    """The CPU plugin's `OPTIMIZATION_CAPABILITIES` (e.g. FP32, INT8, BF16)."""
    return tuple(_core().get_property(DEVICE, "OPTIMIZATION_CAPABILITIES"))


def is_quantized(model: Any) -> bool:
    """Whether an `ov.Model` holds quantized (FakeQuantize) layers."""
    return any(op.get_type_name() in _QUANTIZED_OPS for op in model.get_ordered_ops())


def read_model(path: str, signature: str = "serving_default") -> tuple[Any, Any]:
    """(`ov.Model`, the object its weights may share memory with, or None).

    Args:
      path: an IR `.xml` (its `.bin` beside it), a SavedModel dir or a `.keras` file.
      signature: the SavedModel signature to convert.

    Raises:
      InputError: a file OpenVINO cannot read or convert, or an unknown signature.
      MissingDependencyError: OpenVINO not installed.
    """
    ov = openvino_module()
    kind = model_kind(path)
    if kind == "openvino":
        try:
            return _core().read_model(path), None
        except RuntimeError as e:
            raise InputError(f"cannot read OpenVINO model {path}: {_first_line(e)}") from None
    if kind == "saved_model":
        loaded = _load_saved_model(path)
        if signature not in loaded.signatures:
            raise InputError(
                f"{path} has no signature {signature!r}; available: "
                f"{sorted(loaded.signatures) or 'none'}"
            )
        source, keep = loaded.signatures[signature], loaded
    elif kind == "keras":
        keep = load_keras(path)
        source = _keras_function(keep)
    else:
        raise InputError(f"{path}: a {kind} model does not run on OpenVINO")
    try:
        # Converted in memory, sharing the TF weights: the caller keeps `keep` alive.
        return ov.convert_model(source), keep
    except Exception as e:  # OpenVINO's converter raises its own types for many causes
        raise InputError(f"OpenVINO cannot convert {path}: {_first_line(e)}") from e


def _keras_function(model: Any) -> Any:
    """A Keras model's inference call as a concrete function that keeps its input's name
    (converting the Keras object itself warns about the input structure)."""
    import tensorflow as tf

    if len(model.inputs) != 1:
        return model  # refused as not one image input, after conversion
    inp = model.inputs[0]
    spec = tf.TensorSpec(inp.shape, inp.dtype, name=inp.name)
    fn = tf.function(lambda x: model(x, training=False), autograph=False)
    return fn.get_concrete_function(spec)


def _dims(partial_shape: Any) -> tuple[int | None, ...]:
    """An `ov.PartialShape` as a tuple, None for each dynamic dimension."""
    if partial_shape.rank.is_dynamic:
        return ()
    return tuple(None if d.is_dynamic else d.get_length() for d in partial_shape)


def _shape_str(dims: tuple[int | None, ...]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"


def _name(port: Any, fallback: str) -> str:
    return port.get_any_name() if port.get_names() else fallback


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _reshape(model: Any, dims: tuple[int | None, ...], path: str) -> None:
    """Reshapes the model's one input to `dims` (None: dynamic)."""
    ov = openvino_module()
    try:
        model.reshape(ov.PartialShape([-1 if d is None else d for d in dims]))
    except RuntimeError as e:
        raise InputError(
            f"{path}: OpenVINO cannot reshape the model input to {_shape_str(dims)}: "
            f"{_first_line(e)}"
        ) from None


@Predictor.register("openvino")
class OpenVINOPredictor(Predictor):
    """An OpenVINO model on its CPU plugin, at an explicit inference precision."""

    runtime = "openvino"

    @classmethod
    def describe_io(cls, path: str) -> list[str]:
        model, _ = read_model(path)
        lines = []
        for what, ports in (("input ", model.inputs), ("output", model.outputs)):
            for i, port in enumerate(ports):
                dtype = port.get_element_type().to_dtype().name
                name = _name(port, f"{what.strip()}_{i}")
                lines.append(
                    f"  {what} {name}: {_shape_str(_dims(port.get_partial_shape()))} {dtype}"
                )
        if is_quantized(model):
            lines.append("  precision: int8 (quantized layers)")
        elif "BF16" in cpu_capabilities():
            lines.append("  precision: f32 (bf16 with precision='bf16')")
        else:
            lines.append("  precision: f32 (this CPU has no bf16)")
        return lines

    def load_model(self) -> Any:
        if self.precision == "bf16" and "BF16" not in (caps := cpu_capabilities()):
            raise OptionsError(
                f"precision 'bf16' needs a CPU with bf16 support; this one offers "
                f"{', '.join(caps)} to OpenVINO: use precision='f32'",
                settings={"precision": "f32"},
            )
        self.threads = self.threads or available_cpus()
        model, self._source = read_model(self.path, self.signature)
        if len(model.inputs) != 1 or len(model.outputs) != 1:
            raise InputError(
                f"{self.path}: OpenVINO model has {len(model.inputs)} inputs and "
                f"{len(model.outputs)} outputs; tfclassify needs one image input and one "
                "class-score output"
            )
        inp, out = model.inputs[0], model.outputs[0]
        dims = _dims(inp.get_partial_shape())
        if len(dims) == 4 and dims[0] is not None:
            # Any batch size through one compiled model.
            dims = (None, *dims[1:])
            _reshape(model, dims, self.path)
        self._set_io(
            dims,
            inp.get_element_type().to_dtype(),
            _dims(out.get_partial_shape()),
            "OpenVINO model",
        )
        self.input_name = _name(inp, "input_0")
        self.output_name = _name(out, "output_0")
        hint = _hint_from_name(self.output_name)
        if model_kind(self.path) == "keras":  # converted: its output is named by TF
            self.output_name = _keras_output_names(self._source)[0]
            hint = _keras_output_kind(self._source)
        self._hint_outputs(hint)
        self._quantized = is_quantized(model)
        self._config = {
            "INFERENCE_PRECISION_HINT": self.precision,
            "INFERENCE_NUM_THREADS": self.threads,
            "PERFORMANCE_HINT": "LATENCY",
            "NUM_STREAMS": 1,
        }
        self._model = model
        self._requests: dict[tuple[int, ...], Any] = {}
        if None in self._input_shape:
            # Compiled per image size at the first batch of it (`warmup` does the first).
            self.precision = "int8" if self._quantized else self.precision
        else:
            self._request(self._input_shape)  # compiled now: the precision is read back
        return model

    def run_inference(self, batch: Any, model: Any) -> np.ndarray:
        x = np.ascontiguousarray(batch)
        request = self._requests.get(x.shape[1:]) or self._request(x.shape[1:])
        # share_inputs: OpenVINO reads the batch where it is. The output is copied out:
        # the request reuses its memory for the next batch.
        return np.asarray(request.infer({0: x}, share_inputs=True)[0], dtype=np.float32)

    # ---- helpers ---------------------------------------------------------------------

    def _request(self, image_shape: tuple[int, ...]) -> Any:
        """The infer request of the model compiled for images of `image_shape`: the
        model as it is when its image shape is static, else reshaped to that shape."""
        model = self._model
        if None in self._input_shape:
            model = model.clone()
            _reshape(model, (None, *image_shape), self.path)
        try:
            compiled = _core().compile_model(model, DEVICE, self._config)
        except RuntimeError as e:
            raise InputError(f"OpenVINO cannot compile {self.path}: {_first_line(e)}") from None
        got = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()  # f32, bf16
        self.precision = "int8" if self._quantized else got
        self._requests[tuple(image_shape)] = request = compiled.create_infer_request()
        return request
