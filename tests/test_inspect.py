"""`tfclassify.inspect`: class counts (dataset.json and records agree), duplicates and
label noise, the grid read back through the reader, the notebook view."""

from __future__ import annotations

import collections
import io
import json
import os
import shutil
import sys

import numpy as np
import pytest
from PIL import Image

from tfclassify import inspect as inspect_cmd
from tfclassify import testing
from tfclassify.core import metadata, schema
from tfclassify.core.errors import MissingDependencyError, OptionsError
from tfclassify.core.options import ReadOptions
from tfclassify.inference.examples import show_examples
from tfclassify.reading.inspection import inspect_dataset
from tfclassify.reading.preprocess import resize_target

CLASSES = ("bird", "cat", "dog")  # label ids 0, 1, 2
CROSS = ("cat/cat_0000.png", "dog/copy_of_a_cat.png")  # one image under two labels
SAME = ("bird/bird_0001.jpg", "bird/bird_0001_again.jpg")  # one image twice in a class


@pytest.fixture(scope="module")
def noisy(tmp_path_factory) -> str:
    """A converted corpus built to hold one image under two labels and one image
    twice under its own, in several shards of two splits, with one skipped file."""
    from tfclassify.convert import convert
    from tfclassify.core.options import ConvertOptions

    root = tmp_path_factory.mktemp("noisy")
    images = root / "images"
    testing.make_class_tree(
        images, classes=CLASSES, per_class=6, seed=7, min_side=24, max_side=64, formats=("PNG",)
    )
    for i in range(0, 6, 2):  # some JPEGs too
        name = images / "bird" / f"bird_{i + 1:04d}"
        Image.open(f"{name}.png").convert("RGB").save(f"{name}.jpg", quality=90)
        os.remove(f"{name}.png")
    for a, b in (CROSS, SAME):
        shutil.copyfile(images / a, images / b)
    (images / "dog" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    out = root / "out"
    convert(
        ConvertOptions(
            input_dir=str(images),
            output_dir=str(out),
            shard_size_mb=0.01,
            validation_fraction=0.25,
            num_workers=1,
            quiet=True,
        )
    )
    return str(out)


def read_records(directory: str) -> dict[str, list[schema.Record]]:
    """Every record of every split, parsed in Python (not by the code under test)."""
    import tensorflow as tf

    info = metadata.load(directory)
    return {
        split: [
            schema.parse(r)
            for path in info.shard_paths(split)
            for r in tf.data.TFRecordDataset(path).as_numpy_iterator()
        ]
        for split in info.splits
    }


def test_class_counts_in_dataset_json_equal_the_records(noisy):
    info = metadata.load(noisy)
    with open(os.path.join(noisy, metadata.METADATA_FILE), encoding="utf-8") as f:
        written = json.load(f)
    records = read_records(noisy)
    assert set(info.splits) == {"train", "validation"}
    for split, rows in records.items():
        counted = collections.Counter(r.label for r in rows)
        expected = tuple(counted[i] for i in range(len(CLASSES)))
        assert info.split(split).class_counts == expected
        assert written["splits"][split]["class_counts"] == dict(zip(CLASSES, expected, strict=True))
        assert sum(expected) == info.split(split).num_examples


def test_label_noise_and_plain_duplicates_are_reported(noisy):
    summary = inspect_dataset(noisy)
    assert summary.counts_from == "dataset.json"
    assert len(summary.duplicates) == 2
    noise, plain = summary.duplicates  # label noise first
    assert summary.label_noise == (noise,)
    assert noise.cross_label and noise.labels == ("cat", "dog")
    assert sorted(c.filename for c in noise.copies) == sorted(CROSS)
    assert not plain.cross_label and plain.labels == ("bird",)
    assert sorted(c.filename for c in plain.copies) == sorted(SAME)
    # The sha256 the records hold, and the split each copy is in.
    by_name = {r.filename: (split, r) for split, rows in read_records(noisy).items() for r in rows}
    for group in summary.duplicates:
        for c in group.copies:
            split, record = by_name[c.filename]
            assert (c.split, c.label, record.sha256) == (split, record.text, group.sha256)

    text = str(summary)
    noise_at, same_at = text.index("label noise"), text.index("under the same label")
    assert noise_at < text.index(CROSS[1]) < same_at < text.index(SAME[1])
    assert "  undecodable: 1, e.g. dog/broken.png (undecodable: " in text
    for split in ("train", "validation"):
        n = summary.splits[split].num_examples
        assert f"\n{split}: {n} images, {summary.splits[split].num_shards} shards of " in text


def test_no_duplicates_is_said(converted_tree):
    summary = inspect_dataset(converted_tree)
    assert summary.duplicates == () and summary.label_noise == ()
    assert "duplicates: none" in str(summary)
    assert repr(summary) == str(summary)  # a console shows the text, not the fields
    assert inspect_dataset(converted_tree, duplicates=False).duplicates is None


def test_an_old_dataset_json_without_class_counts_loads_and_inspects(noisy, tmp_path):
    """Before class counts were recorded: the counts come from the records' pass,
    the same with --noduplicates."""
    old = shutil.copytree(noisy, tmp_path / "old")
    path = old / metadata.METADATA_FILE
    d = json.loads(path.read_text(encoding="utf-8"))
    for split in d["splits"].values():
        del split["class_counts"]
    path.write_text(json.dumps(d), encoding="utf-8")
    assert all(s.class_counts is None for s in metadata.load(str(old)).splits.values())

    new = inspect_dataset(noisy)
    for duplicates in (True, False):
        summary = inspect_dataset(old, duplicates=duplicates)
        assert summary.counts_from == "records"
        assert summary.splits == new.splits
        assert "dataset.json predates them" in str(summary)
    assert summary.duplicates is None


def test_the_html_repr_holds_the_table_and_the_chart(noisy):
    page = inspect_dataset(noisy)._repr_html_()
    assert page.count("<table>") >= 3  # splits, classes (with the chart), skipped, duplicates
    assert page.count("<svg") == len(CLASSES) and "<rect" in page
    for label in CLASSES:
        assert f"<tr><td>{label}</td>" in page
    assert "label noise" in page and CROSS[1] in page


def _png(path: str) -> np.ndarray:
    with open(path, "rb") as f:
        data = f.read()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def test_the_command_prints_and_saves_a_grid(noisy, tmp_path, capsys):
    grid = str(tmp_path / "grid.png")
    assert inspect_cmd.main(["inspect", noisy, "--grid", grid, "--n", "6", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "label noise" in out and CROSS[1] in out
    assert out.endswith(f"grid of 6 images -> {grid}\n")
    pixels = _png(grid)
    assert pixels.shape == (410, 540, 3)  # 3 x 2 cells of 1.8 in, a 0.25 in title each
    assert pixels.std() > 20


def test_the_grid_shows_the_records_read_with_their_labels(noisy):
    records = {r.filename: r for rows in read_records(noisy).values() for r in rows}
    fig = show_examples(noisy, n=5, split="train", seed=1, image_size=(48, 64), columns=2)
    assert len(fig.axes) == 5
    keys = [ax.get_label() for ax in fig.axes]
    assert len(set(keys)) == 5
    train = {r.filename for r in read_records(noisy)["train"]}
    letterbox = ReadOptions(image_size=(48, 64), resize="pad")
    padded = 0
    for ax in fig.axes:
        record = records[ax.get_label()]
        assert ax.get_label() in train
        assert ax.get_title() == record.text
        image = np.asarray(ax.get_images()[0].get_array())
        assert image.shape == (48, 64, 3) and image.dtype == np.uint8
        # Letterboxed, not cropped: the whole stored image, fitted, between black bars.
        h, w = resize_target(record.height, record.width, letterbox)
        top, left = (48 - h) // 2, (64 - w) // 2
        inside = image[top : top + h, left : left + w]
        assert inside.std() > 5  # not blank
        assert image.sum() == inside.sum()  # black around it
        padded += (h, w) != (48, 64)
    assert padded
    # The same seed, the same sample.
    again = show_examples(noisy, n=5, split="train", seed=1, image_size=(48, 64))
    assert [ax.get_label() for ax in again.axes] == keys
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    assert Image.open(buffer).size == fig.canvas.get_width_height()


def test_a_model_marks_its_wrong_predictions(noisy, tmp_path, capsys):
    """A model that always says "bird": right on the birds, red on every other image."""
    import keras

    inputs = keras.Input((16, 16, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(inputs)
    scores = keras.layers.Dense(
        3,
        activation="softmax",
        kernel_initializer="zeros",
        bias_initializer=keras.initializers.Constant([2.0, 0.0, 0.0]),
    )(pooled)
    model = str(tmp_path / "always_bird.keras")
    keras.Model(inputs, scores).save(model)

    fig = show_examples(noisy, n=100, split="train", model=model)
    kinds = collections.Counter()
    for ax in fig.axes:
        label, prediction = ax.get_title().split("\n")
        assert prediction == "model: bird 79%"  # e^2 / (e^2 + 2)
        wrong = label != "bird"
        kinds[wrong] += 1
        assert ax.title.get_color() == ("red" if wrong else "darkgreen")
        assert (ax.spines["left"].get_edgecolor()[:3] == (1.0, 0.0, 0.0)) == wrong
    assert kinds[True] and kinds[False]
    assert len(fig.axes) == metadata.load(noisy).split("train").num_examples

    grid = str(tmp_path / "grid.png")
    args = ["inspect", noisy, "--noduplicates", "--grid", grid, "--model", model, "--n", "100"]
    assert inspect_cmd.main([*args, "--split", "train"]) == 0
    out = capsys.readouterr().out
    assert out.endswith(f"; {kinds[True]} of {len(fig.axes)} predicted wrong\n")
    assert _png(grid).std() > 20


def test_without_matplotlib_the_grid_is_one_line(noisy, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` fails
    message = (
        "matplotlib is not installed: pip install 'tfclassify[plot]' (or pip install matplotlib)"
    )
    with pytest.raises(MissingDependencyError) as e:
        show_examples(noisy)
    assert str(e.value) == message
    grid = str(tmp_path / "grid.png")
    assert inspect_cmd.main(["inspect", noisy, "--grid", grid]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"error: {message}\n" and captured.out == ""
    assert not os.path.exists(grid)
    # The summary and its notebook view need no matplotlib.
    assert inspect_cmd.main(["inspect", noisy, "--noduplicates"]) == 0
    assert "<svg" in inspect_dataset(noisy, duplicates=False)._repr_html_()


@pytest.mark.parametrize(
    "args, error",
    [
        (["--model", "m.keras"], "error: --model shows predictions in the grid: it needs --grid"),
        (["--grid", "grid.xyz"], "error: cannot write a picture to 'grid.xyz': end its name in"),
        (["--grid", "g.png", "--seed", "-1"], "error: seed must be"),
        (["--grid", "g.png", "--split", "test"], "error: split 'test' not in"),
    ],
)
def test_command_errors_are_one_line(noisy, tmp_path, monkeypatch, capsys, args, error):
    monkeypatch.chdir(tmp_path)
    assert inspect_cmd.main(["inspect", noisy, *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith(error) and err.count("\n") == 1


def test_bad_counts_are_refused(noisy):
    with pytest.raises(OptionsError, match="n must be an integer in"):
        show_examples(noisy, n=0)
    with pytest.raises(OptionsError, match="columns must be an integer in"):
        show_examples(noisy, n=2, columns=0)
