"""Thread budget and device placement: applied once, before TF starts, and reported.

TensorFlow sizes its op thread pools when its runtime initialises (the first op or
model load). Setting them later either does nothing or raises, depending on the
value, so `apply_threads` turns TF's late-call `RuntimeError` into an `OptionsError`
that says what to do, and `effective_threads` reports what is actually in effect
(benchmarks print it next to every figure). The same call sets TF's oneDNN switch
and turns its C++ INFO lines off, both read once, when TF is imported.

Device rules: input work (read, decode, resize) is
always pinned to the CPU; the model runs on `resolve_device(...)`. A channels-first
model runs on a CPU where TF's kernels there take NCHW (oneDNN's do for convolutions,
Eigen's do not): `infer` tries one blank image before reading any data.
"""

from __future__ import annotations

import os
import platform
import sys
from typing import Any

from tfclassify.core.cpus import available_cpus
from tfclassify.core.errors import OptionsError
from tfclassify.core.options import ThreadOptions

INPUT_DEVICE = "/CPU:0"
ONEDNN_ENV = "TF_ENABLE_ONEDNN_OPTS"
LOG_LEVEL_ENV = "TF_CPP_MIN_LOG_LEVEL"


def _tf():
    import tensorflow as tf  # deferred: `python -m ... --help` and option parsing stay fast

    return tf


def apply_threads(options: ThreadOptions) -> dict[str, Any]:
    """Applies the thread budget and oneDNN switch; call before TensorFlow is imported
    (for oneDNN) or at least before any model is loaded or op is run (for threads).

    Applying the same values again (or all-None options) is fine at any time.

    Args:
      options: the budget; None fields keep TF's defaults, except `onednn` (see
        `ThreadOptions`).

    Returns:
      `effective_threads()` after applying.

    Raises:
      OptionsError: TF's runtime is already initialised with different thread
        values, or TF is already imported with the other oneDNN setting.
    """
    _apply_onednn(options.onednn)  # before the import below: TF reads it once, at import
    tf = _tf()
    settings = (
        (
            "intra_op",
            options.intra_op,
            tf.config.threading.set_intra_op_parallelism_threads,
            tf.config.threading.get_intra_op_parallelism_threads,
        ),
        (
            "inter_op",
            options.inter_op,
            tf.config.threading.set_inter_op_parallelism_threads,
            tf.config.threading.get_inter_op_parallelism_threads,
        ),
    )
    for name, value, setter, getter in settings:
        if value is None:
            continue
        try:
            # TF accepts a re-set to the current value after initialisation and raises
            # RuntimeError for a different one: exactly "apply once, idempotently".
            setter(value)
        except RuntimeError as e:
            raise OptionsError(
                f"cannot set {name} threads to {value}: TensorFlow is already initialised "
                f"with {name}={getter()} (0 = TF default). Apply ThreadOptions before "
                "loading a model or running any TF op, e.g. at the top of the script or in "
                "a fresh process/kernel"
            ) from e
    return effective_threads()


def prefer_onednn() -> None:
    """oneDNN on unless the environment decides, if TF is not imported yet; else a
    one-time warning when TF came up without it (see `_hint_onednn_off`). For entry
    points that load a model without `apply_threads` (`Predictor.load`)."""
    _apply_onednn(None)


def _apply_onednn(wanted: bool | None) -> None:
    """Sets TF's oneDNN switch (and its log level) while TF is not imported yet; after,
    only checks it.

    None turns oneDNN on unless the user's environment already decides.
    """
    if "tensorflow" not in sys.modules:
        quiet_tensorflow_info()
        if wanted is not None:
            os.environ[ONEDNN_ENV] = "1" if wanted else "0"
        else:
            os.environ.setdefault(ONEDNN_ENV, "1")
        return
    if wanted is None:
        _hint_onednn_off()
        return
    if wanted != onednn_enabled():
        raise OptionsError(
            f"cannot turn oneDNN {'on' if wanted else 'off'}: TensorFlow is already imported "
            f"with it {'on' if onednn_enabled() else 'off'} ({ONEDNN_ENV} is read at import). "
            "Apply ThreadOptions before importing tensorflow or keras, or set "
            f"{ONEDNN_ENV}={int(wanted)} in the environment"
        )


def quiet_tensorflow_info() -> None:
    """TF's C++ INFO lines off (graph optimizer sessions, reader settings...), its
    warnings and errors kept, unless the environment sets the level. TF reads the
    variable once, when it is imported: after that this changes nothing."""
    if "tensorflow" not in sys.modules:
        os.environ.setdefault(LOG_LEVEL_ENV, "1")


_hinted = False


def _hint_onednn_off() -> None:
    """Says once when TF was imported before tfclassify could turn oneDNN on, on an
    x86 CPU where TF leaves it off by default (TF enables it only on recent Intel
    CPUs): models then run markedly slower there (benchmarks/NOTES.md)."""
    global _hinted
    if (
        _hinted
        or ONEDNN_ENV in os.environ  # the user decided
        or platform.machine().lower() not in ("x86_64", "amd64")
        or onednn_enabled()
    ):
        return
    _hinted = True
    from absl import logging

    logging.warning(
        "TensorFlow was imported with oneDNN off (its default on this CPU): CPU inference "
        "runs up to ~2x slower. Set %s=1 in the environment, or apply tfclassify "
        "ThreadOptions before importing tensorflow or keras.",
        ONEDNN_ENV,
    )


def onednn_enabled() -> bool:
    """Whether TF runs its CPU ops on oneDNN in this process."""
    try:
        from tensorflow.python.util import _pywrap_util_port  # the flag TF itself consults

        return bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):  # a TF without the private module: unknown
        return os.environ.get(ONEDNN_ENV, "").lower() in ("1", "true")


def effective_threads() -> dict[str, Any]:
    """The thread settings in effect, as configured and as they resolve on this host.

    Returns:
      `intra_op`/`inter_op`: TF's configured values (0 = TF default);
      `intra_op_effective`/`inter_op_effective`: the thread count that means here;
      `cpus`: CPUs available to this process; `onednn`: whether CPU ops run on
      oneDNN. A tf.data pipeline's pool is its own setting
      (`ReadOptions.private_threadpool_size`), not the process's.
    """
    tf = _tf()
    cpus = available_cpus()
    intra = tf.config.threading.get_intra_op_parallelism_threads()
    inter = tf.config.threading.get_inter_op_parallelism_threads()
    return {
        "intra_op": intra,
        "inter_op": inter,
        # TF's default for both pools is the number of schedulable CPUs.
        "intra_op_effective": intra or cpus,
        "inter_op_effective": inter or cpus,
        "cpus": cpus,
        "onednn": onednn_enabled(),
    }


def gpu_available() -> bool:
    """Whether TF sees a GPU. Listing devices does not initialise the runtime."""
    return bool(_tf().config.list_physical_devices("GPU"))


def resolve_device(device: str = "auto") -> str:
    """Maps `auto`/`cpu`/`gpu` to a TF device string.

    Args:
      device: `auto` (GPU when present), `cpu` or `gpu`.

    Returns:
      "/CPU:0" or "/GPU:0".

    Raises:
      OptionsError: unknown name, or `gpu` requested on a host without one.
    """
    d = device.lower()
    if d == "cpu":
        return "/CPU:0"
    if d == "gpu":
        if not gpu_available():
            raise OptionsError(
                "device 'gpu' requested but TensorFlow sees no GPU on this host; "
                "use --device=cpu or --device=auto"
            )
        return "/GPU:0"
    if d == "auto":
        return "/GPU:0" if gpu_available() else "/CPU:0"
    raise OptionsError(f"device must be 'auto', 'cpu' or 'gpu', got {device!r}")


def is_gpu(device: str) -> bool:
    return "GPU" in device.upper()


def enable_mixed_precision(device: str) -> None:
    """float16 compute / float32 variables for Keras layers built after this call.

    Only useful on a GPU with tensor cores; refused on CPU, where float16 is slower.
    This path cannot be exercised on the CPU-only test hosts.
    """
    if not is_gpu(device):
        raise OptionsError(
            f"mixed precision needs a GPU device, got {device}; drop --mixed_precision"
        )
    import keras

    keras.mixed_precision.set_global_policy("mixed_float16")


def enable_inference_mixed_precision(device: str) -> None:
    """float16 compute for models whose graphs TF builds after this call: Grappler's
    auto_mixed_precision rewrite, which works on any graph (a SavedModel or a frozen
    Keras model alike, where a Keras dtype policy only reaches layers not yet built)
    and keeps numerically sensitive ops (softmax, reductions) in float32.

    Process-wide, like every Grappler option; refused on CPU, where float16 is slower.
    This path cannot be exercised on the CPU-only test hosts.
    """
    if not is_gpu(device):
        raise OptionsError(
            f"mixed precision needs a GPU device, got {device}; drop --mixed_precision"
        )
    _tf().config.optimizer.set_experimental_options({"auto_mixed_precision": True})


def prefetch_to_device(dataset: Any, device: str, buffer_size: int = 1) -> Any:
    """On a GPU, copies the next batch to device memory while the current one computes.

    A no-op on CPU (the data is already there). The GPU path cannot be exercised on
    the CPU-only test hosts; it is the tf.data-recommended final transformation.
    """
    if not is_gpu(device):
        return dataset
    tf = _tf()
    return dataset.apply(tf.data.experimental.prefetch_to_device(device, buffer_size))
