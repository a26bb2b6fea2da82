"""LiteRT (`.tflite`) models behind `Predictor`: one interpreter, resized per batch size.

The interpreter's thread count comes from the one thread budget (`threads`, else the
CPUs this process may use). An integer model's input and output scale and zero point
are read from the file: callers pass the same float images as to the float model,
quantized in the tf.data graph by `infer` or here by `predict`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tfclassify.core.cpus import available_cpus
from tfclassify.core.errors import InputError, MissingDependencyError
from tfclassify.models.predictor import Predictor, Quantization, _hint_from_name

# What a `.tflite` file computes in, told from its tensors' dtypes.
_WEIGHT_PRECISIONS = (("int8", "dynamic-range"), ("float16", "float16"))


def interpreter_class() -> Any:
    """LiteRT's `Interpreter`, or one line saying which install brings it."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        raise MissingDependencyError("LiteRT", "litert", "ai-edge-litert") from None
    return Interpreter


def open_interpreter(path: str, threads: int | None = None) -> Any:
    """An interpreter over `path`, its tensors allocated.

    Raises:
      InputError: not a LiteRT model; MissingDependencyError: LiteRT not installed.
    """
    interpreter = interpreter_class()
    try:
        it = interpreter(model_path=path, num_threads=threads or available_cpus())
        it.allocate_tensors()
    except (ValueError, RuntimeError) as e:
        raise InputError(f"cannot load LiteRT model {path}: {e}") from e
    return it


def _quantization(detail: dict[str, Any]) -> Quantization | None:
    dtype = np.dtype(detail["dtype"]).name
    scale, zero_point = detail["quantization"]
    if dtype not in ("int8", "uint8"):
        return None
    return Quantization(float(scale) or 1.0, int(zero_point), dtype)


def precision_of(it: Any) -> str:
    """`int8` (integer input), `dynamic-range` (int8 weights), `float16` or `f32`."""
    if _quantization(it.get_input_details()[0]) is not None:
        return "int8"
    dtypes = {np.dtype(t["dtype"]).name for t in it.get_tensor_details()}
    for dtype, name in _WEIGHT_PRECISIONS:
        if dtype in dtypes:
            return name
    return "f32"


def _shape(detail: dict[str, Any]) -> tuple[int | None, ...]:
    signature = detail.get("shape_signature")
    dims = detail["shape"] if signature is None or not len(signature) else signature
    return tuple(None if int(d) < 0 else int(d) for d in dims)


@Predictor.register("tflite")
class LiteRTPredictor(Predictor):
    """A `.tflite` model on LiteRT's interpreter (XNNPACK on the CPU)."""

    runtime = "litert"

    @classmethod
    def describe_io(cls, path: str) -> list[str]:
        it = open_interpreter(path, 1)
        lines = []
        sides = (("input ", it.get_input_details()), ("output", it.get_output_details()))
        for what, details in sides:
            for d in details:
                shape = "[" + ", ".join("?" if s is None else str(s) for s in _shape(d)) + "]"
                q = _quantization(d)
                scale = f" (scale {q.scale:.6g}, zero point {q.zero_point})" if q else ""
                lines.append(f"  {what} {d['name']}: {shape} {np.dtype(d['dtype']).name}{scale}")
        lines.append(f"  precision: {precision_of(it)}")
        return lines

    def load_model(self) -> Any:
        self.threads = self.threads or available_cpus()
        it = open_interpreter(self.path, self.threads)
        inputs, outputs = it.get_input_details(), it.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise InputError(
                f"{self.path}: LiteRT model has {len(inputs)} inputs and {len(outputs)} "
                "outputs; tfclassify needs one image input and one class-score output"
            )
        self._in, self._out = inputs[0], outputs[0]
        self.input_quantization = _quantization(self._in)
        self._output_quantization = _quantization(self._out)
        float_input = "float32" if self.input_quantization else np.dtype(self._in["dtype"]).name
        self._set_io(_shape(self._in), float_input, _shape(self._out), "LiteRT model")
        self.input_name, self.output_name = self._in["name"], self._out["name"]
        self._hint_outputs(_hint_from_name(self.output_name))
        if self._output_quantization is not None:
            self._output_step = self._output_quantization.scale
        self.precision = precision_of(it)
        self._batch = int(self._in["shape"][0])
        return it

    def run_inference(self, batch: Any, model: Any) -> np.ndarray:
        x = np.asarray(batch)
        if x.shape[0] != self._batch:
            # Once per batch size (a short last batch: once more).
            model.resize_tensor_input(self._in["index"], list(x.shape), strict=False)
            model.allocate_tensors()
            self._batch = x.shape[0]
        model.set_tensor(self._in["index"], x)
        model.invoke()
        out = model.get_tensor(self._out["index"])
        q = self._output_quantization
        return q.dequantize(out) if q is not None else out
