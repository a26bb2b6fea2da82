"""`python -m tfclassify.quantize`: LiteRT and OpenVINO variants of a float model,
measured end to end on this host, the fastest within an accuracy budget selected.

Usage:
  python -m tfclassify.quantize --model MODEL --data DIR --output_dir Q
  python -m tfclassify.quantize --model MODEL --data DIR --output_dir Q --variants fp32,int8
  python -m tfclassify.quantize --list_variants
  python -m tfclassify.infer --model Q --data DIR        # runs the selected variant
  tfclassify.quantize("model/", "shards/", QuantizeOptions(output_dir="q/"))

Variants: fp32, dynamic-range, float16, int8 (LiteRT), openvino-f32, openvino-bf16,
openvino-int8 (OpenVINO; int8 through NNCF). What each one is and how the choice is
made: `tfclassify.models.quantization`, `tfclassify.inference.variants`.
"""

from __future__ import annotations

import sys
from typing import Any

from tfclassify import _callable, cli
from tfclassify.core.options import QUANTIZE_VARIANTS, SELECT_MODES, QuantizeOptions, ReadOptions
from tfclassify.inference.variants import QuantizeReport, quantize

__all__ = ["QuantizeOptions", "QuantizeReport", "main", "quantize"]

_DOC = __doc__  # --help's text; forward_calls adds the function's to __doc__


def _flags() -> Any:
    fv, (string, integer, real, boolean) = cli.new_flags()
    d = cli.defaults(QuantizeOptions)
    string("model", None, "Float model: SavedModel dir, .keras file or a tfclassify model dir.")
    string("data", None, "Converted dataset directory (has dataset.json).")
    string("output_dir", None, "Where the variants, labels.txt and report.json go.")
    string(
        "variants",
        None,
        f"Comma-separated, from {','.join(QUANTIZE_VARIANTS)} "
        "(default: every one whose runtime is installed and this CPU runs).",
    )
    integer(
        "representative_samples",
        d["representative_samples"],
        "Training images the int8 variants are calibrated on.",
    )
    string("representative_split", d["representative_split"], "Split they are drawn from.")
    string("select", d["select"], f"One of {', '.join(SELECT_MODES)}.")
    real(
        "max_accuracy_drop",
        d["max_accuracy_drop"],
        "Largest top-1 accuracy drop from the float model a selected variant may have.",
    )
    string("split", None, "Split measured on (default: validation if present, else train).")
    integer("batch_size", d["batch_size"], "Images per model call while measuring.")
    integer("max_images", None, "Measure on the first this many images of --split.")
    string("image_size", None, "N or HxW, for a model that accepts any size.")
    string("signature", d["signature"], "The float SavedModel's signature.")
    cli.define_threads_flag(
        "tf_data_threads", "tf.data private thread pool size (default: shared pool).", fv
    )
    cli.define_runtime_flags(fv)
    boolean("skip_errors", False, "Skip, count and log corrupt records instead of failing.")
    boolean("overwrite", False, "Replace a previous quantize output in --output_dir.")
    boolean("list_variants", False, "Print which variants this host can write and run; exit.")
    boolean("quiet", False, cli.QUIET_HELP)
    return fv


def _variants(text: str | None) -> tuple[str, ...] | None:
    if not text:
        return None
    return tuple(v.strip() for v in text.split(",") if v.strip())


def _options_from_flags(fv: Any) -> QuantizeOptions:
    """QuantizeOptions from the flags; QuantizeOptions checks every value."""
    return QuantizeOptions(
        output_dir=fv.output_dir,
        variants=_variants(fv.variants),
        representative_samples=fv.representative_samples,
        representative_split=fv.representative_split,
        max_accuracy_drop=fv.max_accuracy_drop,
        select=fv.select,
        split=fv.split,
        batch_size=fv.batch_size,
        max_images=fv.max_images,
        image_size=cli.parse_size(fv.image_size),
        signature=fv.signature,
        threads=cli.thread_options(fv),
        read=ReadOptions(private_threadpool_size=fv.tf_data_threads, skip_errors=fv.skip_errors),
        overwrite=fv.overwrite,
        quiet=fv.quiet,
    )


def _list_variants() -> str:
    from tfclassify.models.quantization import available_variants

    return "\n".join(
        f"{name}: {'available' if why is None else 'unavailable: ' + why}"
        for name, why in available_variants().items()
    )


def main(argv: list[str] | None = None) -> int:
    """`python -m tfclassify.quantize`; returns the exit status (2 for user errors)."""

    def body(fv: Any) -> int:
        if fv.list_variants:
            print(_list_variants())
            return 0
        cli.require(fv, ("model", "data", "output_dir"), " (or pass --list_variants)")
        report = quantize(fv.model, fv.data, _options_from_flags(fv))
        print(report)
        if report.selected is not None:
            print(f"run it: python -m tfclassify.infer --model {fv.output_dir} --data {fv.data}")
        return 0

    return cli.run("tfclassify.quantize", _DOC, _flags(), argv, body)


_callable.forward_calls(__name__, "quantize")

if __name__ == "__main__":
    sys.exit(main())
