"""tfclassify.core.options: every field of every options class refuses a wrong type or
a missing required value with an OptionsError naming the field and the value."""

from __future__ import annotations

import dataclasses
import pathlib

import pytest

from tfclassify.conversion import images
from tfclassify.core.errors import OptionsError
from tfclassify.core.options import (
    ConvertOptions,
    ImageConfig,
    InferOptions,
    QuantizeOptions,
    ReadOptions,
    ThreadOptions,
    TrainOptions,
)

# The least each class needs to be valid.
REQUIRED = {
    ConvertOptions: {"output_dir": "out", "input_dir": "in"},
    ImageConfig: {},
    ThreadOptions: {},
    ReadOptions: {},
    InferOptions: {},
    TrainOptions: {"data": "d", "output": "o"},
    QuantizeOptions: {"output_dir": "q"},
}


class _Odd:
    def __repr__(self) -> str:
        return "<odd>"


# A value no field takes, whatever its type: a TypeError deep in a check if unchecked.
WRONG = (_Odd(), [], b"bytes")


@pytest.mark.parametrize(
    "cls, field",
    [(cls, f.name) for cls in REQUIRED for f in dataclasses.fields(cls)],
)
def test_every_field_refuses_a_wrong_type_naming_field_and_value(cls, field):
    for value in WRONG:
        with pytest.raises(OptionsError) as e:
            cls(**{**REQUIRED[cls], field: value})
        message = str(e.value)
        assert message.startswith(f"{field} must be ") and message.endswith(f"got {value!r}")


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: ConvertOptions(output_dir="o", input_dir="i", num_workers="4"), "num_workers"),
        (lambda: ConvertOptions(output_dir="o", input_dir="i", name=5), "name"),
        (lambda: ConvertOptions(output_dir="o", input_dir="i", quiet="yes"), "quiet"),
        (lambda: ReadOptions(image_size="big"), "image_size"),
        (lambda: ReadOptions(image_size=(16.5, 16)), "image_size"),
        (lambda: InferOptions(top_k=2.5), "top_k"),
        (lambda: InferOptions(output=5), "output"),
        (lambda: InferOptions(threads={"intra_op": 2}), "threads"),
        (lambda: TrainOptions(data="d", output="o", verbose=True), "verbose"),
        (lambda: ThreadOptions(onednn="no"), "onednn"),
    ],
)
def test_wrong_types_through_the_api_are_options_errors(make, message):
    """Each was a TypeError or AttributeError from inside a check, or was stored."""
    with pytest.raises(OptionsError, match=f"^{message} must be "):
        make()


def test_a_missing_required_field_is_an_options_error():
    with pytest.raises(OptionsError, match=r"^output_dir must be set, got None$"):
        ConvertOptions(input_dir="photos")
    with pytest.raises(OptionsError, match=r"^output_dir must be set"):
        ConvertOptions()
    with pytest.raises(OptionsError, match=r"^data must be set"):
        TrainOptions(output="model")
    with pytest.raises(OptionsError, match=r"^output must be set"):
        TrainOptions(data="shards")


def test_values_are_normalised_where_they_are_set():
    o = ConvertOptions(output_dir=pathlib.Path("out"), input_dir=pathlib.Path("in"))
    assert (o.output_dir, o.input_dir) == ("out", "in")  # JSON-safe in dataset.json
    assert ReadOptions(image_size=[12, 20]).image_size == (12, 20)
    assert InferOptions(image_size=7).image_size == (7, 7)


def test_convert_options_hold_the_image_settings_once():
    """The converter's per-image code takes `ConvertOptions` as its `ImageConfig`:
    one declaration of those fields, their defaults and their bounds."""
    o = ConvertOptions(output_dir="o", input_dir="i", validate="header", max_side=64)
    assert isinstance(o, images.ImageConfig)
    names = {f.name for f in dataclasses.fields(ImageConfig)}
    assert names <= {f.name for f in dataclasses.fields(ConvertOptions)}
    for name in names:
        assert getattr(ImageConfig(), name) == getattr(ConvertOptions("o", input_dir="i"), name)
    with pytest.raises(OptionsError, match="^max_pixels must be "):
        ImageConfig(max_pixels=0)


def test_the_tf_data_pool_has_one_setting():
    """`ReadOptions.private_threadpool_size`; the process's thread budget has none."""
    assert "private_threadpool_size" in {f.name for f in dataclasses.fields(ReadOptions)}
    assert {f.name for f in dataclasses.fields(ThreadOptions)} == {"intra_op", "inter_op", "onednn"}
    assert "skip_errors" not in {f.name for f in dataclasses.fields(InferOptions)}  # in read
