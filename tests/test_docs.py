"""The README's pictures: committed small, each one the README shows, and remade by
docs/make_pictures.py from a run of the quickstart."""

from __future__ import annotations

import os
import re
import runpy

import numpy as np
import pytest
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PICTURES = runpy.run_path(os.path.join(ROOT, "docs", "make_pictures.py"))


def _check_picture(path: str) -> None:
    assert os.path.getsize(path) <= PICTURES["MAX_BYTES"], path
    with Image.open(path) as picture:
        assert picture.format == "PNG", path
        assert np.asarray(picture.convert("L")).std() > 10, f"{path} is blank"


def test_the_readme_shows_every_picture_and_each_is_a_small_png():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        shown = re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", f.read())
    names = {os.path.basename(p) for p in shown}
    assert names >= set(PICTURES["PICTURES"].values())
    for path in shown:
        _check_picture(os.path.join(ROOT, path))


def test_shrink_fits_a_picture_in_its_limit(tmp_path):
    noise = np.random.default_rng(0).integers(0, 256, (120, 200, 3), np.uint8)
    Image.fromarray(noise).save(tmp_path / "big.png")
    limit = 20_000  # this noise takes more at 256 and at 128 colours: fewer must do
    size = PICTURES["shrink"](str(tmp_path / "big.png"), str(tmp_path / "small.png"), limit)
    assert size == os.path.getsize(tmp_path / "small.png") <= limit
    with Image.open(tmp_path / "small.png") as small:
        assert small.size == (200, 120) and small.mode == "P"
    with pytest.raises(ValueError, match="even at 16 colours"):
        PICTURES["shrink"](str(tmp_path / "big.png"), str(tmp_path / "no.png"), 1000)
    assert not os.path.exists(tmp_path / "no.png")


@pytest.mark.slow
def test_make_pictures_draws_the_quickstarts_pictures(tmp_path, monkeypatch):
    monkeypatch.setenv("QUICKSTART_QUICK", "1")
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1"))
    PICTURES["main"](str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == sorted(PICTURES["PICTURES"].values())
    for name in os.listdir(tmp_path):
        _check_picture(str(tmp_path / name))
