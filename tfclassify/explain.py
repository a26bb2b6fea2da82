"""`python -m tfclassify.explain`: Grad-CAM heat-maps over sample images, for the
classes the model predicts for them, drawn as a grid picture.

Usage:
  python -m tfclassify.explain --model MODEL --data DIR --output cam.png
  python -m tfclassify.explain --model MODEL --data DIR --n 16 --seed 1 --layer conv1 \
      --output cam.png
  tfclassify.explain("model.keras", "shards/", n=8)     # heat-maps as numpy arrays

MODEL is a .keras/.h5 file, a SavedModel or a tfclassify model dir (LiteRT and
OpenVINO models give no gradients: pass the model they were made from). The images
are read and preprocessed as `infer` reads them for the model. Needs matplotlib:
pip install 'tfclassify[plot]'. How the maps are made: `tfclassify.models.gradcam`.
"""

from __future__ import annotations

import sys
from typing import Any

from tfclassify import _callable, cli
from tfclassify.core.options import InferOptions
from tfclassify.inference.explanation import (
    MAX_IMAGES,
    Explanation,
    check_drawing,
    draw_explanation,
    explain,
)

__all__ = ["Explanation", "draw_explanation", "explain", "main"]

_DOC = __doc__  # --help's text; forward_calls adds the function's to __doc__


def _flags() -> Any:
    fv, (string, integer, real, _) = cli.new_flags()
    string("model", None, "A .keras/.h5 file, a SavedModel dir or a tfclassify model dir.")
    string("data", None, "Converted dataset directory (has dataset.json).")
    string("output", None, "The picture: .png (or .svg, .pdf, .jpg ...).")
    integer("n", 8, "Images explained.", lower_bound=1, upper_bound=MAX_IMAGES)
    string("split", None, "Split to draw them from (default: validation if present, else train).")
    integer(
        "seed", None, "Draw a random sample with this seed (default: the first N).", lower_bound=0
    )
    string("layer", None, "The conv layer to explain, by name (default: the last one).")
    real("alpha", 0.4, "The heat-map's opacity over the image, in [0, 1].")
    string("colormap", "jet", "matplotlib colormap of the heat-map.")
    integer("columns", None, "Images per row (default: up to 4).", lower_bound=1)
    string("image_size", None, "N or HxW, for a model that accepts any size.")
    string("signature", InferOptions().signature, "SavedModel signature to call.")
    cli.define_runtime_flags(fv)
    return fv


def main(argv: list[str] | None = None) -> int:
    """`python -m tfclassify.explain`; returns the exit status (2 for user errors)."""

    def body(fv: Any) -> int:
        cli.require(fv, ("model", "data", "output"))
        # matplotlib, the output's suffix and the drawing flags before the model loads.
        check_drawing(fv.output, fv.alpha, fv.colormap, fv.columns)
        options = InferOptions(
            image_size=cli.parse_size(fv.image_size),
            signature=fv.signature,
            threads=cli.thread_options(fv),
        )
        result = explain(
            fv.model,
            fv.data,
            n=fv.n,
            split=fv.split,
            seed=fv.seed,
            layer=fv.layer,
            options=options,
        )
        draw_explanation(
            result, fv.output, alpha=fv.alpha, colormap=fv.colormap, columns=fv.columns
        )
        print(result)
        print(f"picture: {fv.output}")
        return 0

    return cli.run("tfclassify.explain", _DOC, _flags(), argv, body)


_callable.forward_calls(__name__, "explain")

if __name__ == "__main__":
    sys.exit(main())
