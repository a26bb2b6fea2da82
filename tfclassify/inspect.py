"""`python -m tfclassify.inspect DIR`: what the converted dataset in DIR holds.

Prints, per split, the images per class and the shards' count and size range; the
skipped inputs by reason; and the images stored more than once (the same
image/key/sha256), naming those filed under different labels (label noise).
With --grid, also saves a grid of sample images read back through the reader,
letterboxed, titled with their labels (and, with --model, the predictions: wrong
ones in red). From Python: `tfclassify.inspect_dataset(DIR)` and
`tfclassify.show_examples(DIR, ...)`.
"""

from __future__ import annotations

import sys
from typing import Any

from tfclassify import cli
from tfclassify.core import plotting
from tfclassify.core.errors import OptionsError
from tfclassify.core.options import InferOptions
from tfclassify.inference.examples import draw_examples, sample_examples, show_examples
from tfclassify.reading.inspection import DatasetSummary, inspect_dataset

__all__ = ["DatasetSummary", "inspect_dataset", "main", "show_examples"]

_DOC = __doc__  # --help's text


def _flags() -> Any:
    fv, (string, integer, _, boolean) = cli.new_flags()
    boolean(
        "duplicates",
        True,
        "Look for images stored more than once (reads every record's sha256, decodes "
        "no image); --noduplicates prints only what dataset.json says.",
    )
    string("grid", None, "Save a grid of sample images here (.png, .svg, .pdf, ...).")
    integer("n", 16, "Images in the grid.", lower_bound=1)
    string("split", None, "Split the grid samples (default: validation if present, else train).")
    integer("seed", 0, "Which sample the grid shows: the same seed, the same images.")
    string("image_size", "160", "Grid cell size in pixels: N or HxW.")
    integer("columns", None, "Images per grid row (default: a square-ish grid).")
    string("model", None, "Also show this model's predictions in the grid (wrong ones red).")
    string("runtime", "auto", "--model's runtime: auto, tensorflow, litert or openvino.")
    string("device", "auto", "--model's device: auto, cpu or gpu.")
    return fv


def main(argv: list[str] | None = None) -> int:
    """`python -m tfclassify.inspect DIR`; returns the exit status (2 for user errors)."""

    def body(fv: Any, directory: str) -> None:
        if fv.model and not fv.grid:
            raise OptionsError("--model shows predictions in the grid: it needs --grid")
        examples = None
        if fv.grid:
            # The grid's settings are checked and its sample read before the long pass.
            plotting.picture_format(fv.grid)
            examples = sample_examples(
                directory,
                fv.n,
                split=fv.split,
                model=fv.model,
                seed=fv.seed,
                image_size=cli.parse_size(fv.image_size),
                infer_options=InferOptions(runtime=fv.runtime, device=fv.device),
            )
        print(inspect_dataset(directory, duplicates=fv.duplicates))
        if examples is None:
            return
        plotting.save_figure(draw_examples(examples, fv.columns), fv.grid)
        wrong = sum(ex.wrong for ex in examples)
        checked = f"; {wrong} of {len(examples)} predicted wrong" if fv.model else ""
        print(f"grid of {cli.plural(len(examples), 'image')} -> {fv.grid}{checked}")

    return cli.run("tfclassify.inspect", _DOC, _flags(), argv, body, positional="DIR")


if __name__ == "__main__":
    sys.exit(main())
