"""`python -m tfclassify.infer`: run a classifier over a converted dataset.

Usage:
  python -m tfclassify.infer --model MODEL --data DIR --output preds.csv
  python -m tfclassify.infer --describe MODEL
  tfclassify.infer("model_dir", "dataset_dir", InferOptions(mode="pipelined"))

The three modes (`sequential`, `batch`, `pipelined`) are described in
`tfclassify.inference.modes`.
"""

from __future__ import annotations

import sys
from typing import Any

from tfclassify import _callable, cli
from tfclassify.core.options import INFER_MODES, InferOptions, ReadOptions
from tfclassify.inference.modes import infer
from tfclassify.inference.predictions import InferResult, write_predictions
from tfclassify.models.predictor import describe

__all__ = [
    "InferOptions",
    "InferResult",
    "describe",
    "infer",
    "main",
    "write_predictions",
]

_DOC = __doc__  # --help's text; forward_calls adds the function's to __doc__


def flags() -> Any:
    """A new set of this command's flags, for jobs that take the same
    (converters/beam_infer.py)."""
    return _flags()


def _flags() -> Any:
    fv, (string, integer, _, boolean) = cli.new_flags()
    d = cli.defaults(InferOptions)
    string(
        "model",
        None,
        "SavedModel dir, .keras, .tflite or OpenVINO .xml file, a tfclassify model dir "
        "(from train) or a quantize output dir (its selected variant).",
    )
    string("data", None, "Converted dataset directory (has dataset.json).")
    string("split", None, "Split to run on (default: validation if present, else train).")
    string("mode", d["mode"], f"One of {', '.join(INFER_MODES)}.")
    integer("batch_size", d["batch_size"], "Images per model call (batch and pipelined modes).")
    integer("top_k", d["top_k"], "Classes listed per image.")
    string("output", None, "Predictions file (.csv or .jsonl); summary.json goes beside it.")
    string("device", d["device"], "auto, cpu or gpu.")
    string(
        "runtime",
        d["runtime"],
        "auto (by file: .tflite LiteRT, .xml OpenVINO, else TF), tensorflow, litert or openvino.",
    )
    string("precision", None, "OpenVINO inference precision: f32 (default) or bf16.")
    cli.define_threads_flag(
        "tf_data_threads", "tf.data private thread pool size (default: shared pool).", fv
    )
    cli.define_runtime_flags(fv)
    string("data_format", None, "NHWC or NCHW (default: from the model; NCHW needs a GPU).")
    string("image_size", None, "N or HxW (default: from the model's input shape).")
    string("signature", d["signature"], "SavedModel signature to call.")
    string("outputs", d["outputs"], "auto, probabilities or logits (softmax applied).")
    integer("max_images", None, "Stop after this many images.")
    string("describe", None, "Print MODEL's signatures (inputs/outputs) and exit.")
    boolean(
        "freeze",
        d["freeze"],
        "Run the model as a frozen inference graph (faster); --nofreeze calls it as saved.",
    )
    boolean("prefetch_to_device", False, "GPU only: copy batch N+1 to the GPU during batch N.")
    boolean("mixed_precision", False, "GPU only: float16 compute for the model.")
    boolean(
        "skip_errors",
        False,
        "Skip, count and log corrupt records of --data instead of failing on the first.",
    )
    boolean("quiet", False, cli.QUIET_HELP)
    return fv


def options_from_flags(fv: Any) -> InferOptions:
    """InferOptions from the flags; InferOptions checks every value."""
    return InferOptions(
        mode=fv.mode,
        batch_size=fv.batch_size,
        top_k=fv.top_k,
        split=fv.split,
        image_size=cli.parse_size(fv.image_size),
        data_format=fv.data_format.upper() if fv.data_format else None,
        device=fv.device,
        runtime=fv.runtime,
        precision=fv.precision,
        threads=cli.thread_options(fv),
        signature=fv.signature,
        outputs=fv.outputs,
        freeze=fv.freeze,
        output=fv.output,
        max_images=fv.max_images,
        prefetch_to_device=fv.prefetch_to_device,
        mixed_precision=fv.mixed_precision,
        # The CLI writes rows as it reports; no need to hold [N, classes] probabilities.
        keep_probabilities=False,
        read=ReadOptions(private_threadpool_size=fv.tf_data_threads, skip_errors=fv.skip_errors),
        quiet=fv.quiet,
    )


def main(argv: list[str] | None = None) -> int:
    """`python -m tfclassify.infer`; returns the exit status (2 for user errors)."""

    def body(fv: Any) -> int:
        if fv.describe:
            print(describe(fv.describe))
            return 0
        cli.require(fv, ("model", "data"), " (or pass --describe MODEL)")
        print(infer(fv.model, fv.data, options_from_flags(fv)))
        if not fv.output:
            print("predictions not saved: pass --output FILE.csv (or .jsonl) to save them")
        return 0

    return cli.run("tfclassify.infer", _DOC, _flags(), argv, body)


_callable.forward_calls(__name__, "infer")

if __name__ == "__main__":
    sys.exit(main())
