"""tfclassify.reading.preprocess: the decode geometry tables (Python and graph twins) and
single-image decoding against an independent reference."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from recordlib import reference

from tfclassify.core.options import ReadOptions
from tfclassify.reading import preprocess


def test_choose_ratio_table():
    table = [
        # (h, w, target_h, target_w) -> ratio
        ((100, 100, 100, 100), 1),
        ((199, 400, 100, 100), 1),  # h short of 2x by one pixel
        ((200, 200, 100, 100), 2),
        ((399, 800, 100, 100), 2),
        ((400, 400, 100, 100), 4),
        ((799, 10_000, 100, 100), 4),
        ((800, 800, 100, 100), 8),
        ((5000, 5000, 100, 100), 8),  # never beyond 8
        ((50, 50, 100, 100), 1),  # upscaling
        ((96, 96, 16, 16), 4),
        ((96, 96, 18, 18), 4),
        ((96, 96, 12, 12), 8),
    ]
    assert [preprocess.choose_ratio(*args) for args, _ in table] == [r for _, r in table]
    # The pipeline's vectorized twin (squash: the resize target is the output size).
    for (h, w, th, tw), want in table:
        o = ReadOptions(image_size=(th, tw), resize="squash")
        _, index = preprocess.geometry(tf.constant([[h, w], [0, 0]], tf.int64), o)
        assert [preprocess.JPEG_RATIOS[i] for i in index.numpy()] == [want, 1]  # unknown: 1


def test_resize_target_table_and_graph_twin_agree():
    sq = ReadOptions(image_size=(16, 24), resize="squash")
    cc = ReadOptions(image_size=16, resize="center_crop")
    cc1 = ReadOptions(image_size=16, resize="center_crop", crop_fraction=1.0)
    pad = ReadOptions(image_size=(16, 24), resize="pad")
    table = [
        ((40, 60, sq), (16, 24)),
        ((40, 60, cc), (18, 27)),  # 16/0.875 = 18.29 -> shorter side 18
        ((60, 40, cc), (27, 18)),
        ((40, 60, cc1), (16, 24)),
        ((24, 24, cc1), (16, 16)),
        ((40, 60, pad), (16, 24)),  # same aspect: fills exactly
        ((60, 40, pad), (16, 11)),  # 40 * 16/60 = 10.67
        ((10, 1000, pad), (1, 24)),  # never below one pixel
    ]
    assert [preprocess.resize_target(h, w, o) for (h, w, o), _ in table] == [t for _, t in table]
    for (h, w, o), want in table:
        need, _ = preprocess.geometry(tf.constant([[h, w]], tf.int64), o)
        assert tuple(int(v) for v in need[0]) == want


@pytest.mark.parametrize(
    "normalize, dtype",
    [("unit", "float32"), ("symmetric", "float32"), ("imagenet", "float32"), ("none", "float32")],
)
def test_decode_and_resize_normalisations_match_reference(dataset, normalize, dtype):
    o = ReadOptions(
        image_size=(16, 20),
        resize="squash",
        normalize=normalize,
        dtype=dtype,
        allow_ratio_decode=False,
    )
    for record in dataset["train"][:2]:  # one JPEG, one PNG
        got = preprocess.decode_and_resize(record.encoded, o).numpy()
        assert got.shape == (16, 20, 3) and got.dtype == np.float32
        np.testing.assert_allclose(got, reference(record, o), rtol=1e-6, atol=1e-5)


def test_decode_and_resize_uint8_and_bfloat16(dataset):
    record = dataset["train"][1]
    raw = ReadOptions(image_size=16, normalize="none", dtype="uint8")
    got = preprocess.decode_and_resize(record.encoded, raw)
    assert got.dtype == tf.uint8 and got.shape == (16, 16, 3)
    want = np.round(reference(record, ReadOptions(image_size=16, normalize="none")))
    np.testing.assert_array_equal(got.numpy(), want.astype(np.uint8))
    bf = preprocess.decode_and_resize(record.encoded, ReadOptions(image_size=16, dtype="bfloat16"))
    assert bf.dtype == tf.bfloat16
    np.testing.assert_allclose(
        tf.cast(bf, tf.float32).numpy(), reference(record, ReadOptions(image_size=16)), atol=4e-3
    )


@pytest.mark.parametrize("normalize", ["unit", "symmetric", "imagenet", "none"])
def test_to_pixels_undoes_each_normalization(dataset, normalize):
    record = dataset["train"][0]
    raw = preprocess.decode_and_resize(record.encoded, ReadOptions(image_size=16, normalize="none"))
    o = ReadOptions(image_size=16, normalize=normalize)
    got = preprocess.to_pixels(preprocess.decode_and_resize(record.encoded, o), normalize)
    assert got.dtype == np.float32 and got.min() >= 0 and got.max() <= 255
    np.testing.assert_allclose(got, raw.numpy(), atol=1e-3)
