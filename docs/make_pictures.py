"""Draws the README's pictures: those the quickstart makes, from one run of it.

    python docs/make_pictures.py [OUTPUT_DIR]   # default: docs/images

Runs examples/quickstart.py (generated data, a small Keras model trained on it, a
short bench on this host), then writes its sample grid with predictions, its
Grad-CAM grid and its bench chart to OUTPUT_DIR as palette PNGs, each small enough
to commit.
"""

from __future__ import annotations

import io
import os
import runpy
import sys
import tempfile

from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUICKSTART = os.path.join(ROOT, "examples", "quickstart.py")
# The quickstart's picture: the README's name for it.
PICTURES = {
    "predictions.png": "inspect_grid.png",
    "explain.png": "explain_grid.png",
    "bench.png": "bench_chart.png",
}
MAX_BYTES = 150 * 1024


def shrink(source: str, target: str, max_bytes: int = MAX_BYTES) -> int:
    """Writes `source` to `target` as a palette PNG of at most `max_bytes`, with as
    many colours (up to 256) as fit; returns its size in bytes.

    Raises:
      ValueError: not even 16 colours fit in `max_bytes`.
    """
    with Image.open(source) as picture:
        rgb = picture.convert("RGB")
    for colours in (256, 128, 64, 32, 16):
        buffer = io.BytesIO()
        rgb.quantize(colours, dither=Image.Dither.NONE).save(buffer, "PNG", optimize=True)
        if buffer.tell() <= max_bytes:
            with open(target, "wb") as f:
                f.write(buffer.getvalue())
            return buffer.tell()
    raise ValueError(f"{source}: over {max_bytes} bytes even at 16 colours")


def main(output_dir: str) -> None:
    os.makedirs(output_dir, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tfclassify_pictures_") as workdir:
        argv = sys.argv
        sys.argv = [QUICKSTART, workdir]
        try:
            runpy.run_path(QUICKSTART, run_name="__main__")
        finally:
            sys.argv = argv
        for name, readme_name in PICTURES.items():
            target = os.path.join(output_dir, readme_name)
            size = shrink(os.path.join(workdir, name), target)
            print(f"{target}: {size / 1024:.0f} KiB")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "docs", "images"))
