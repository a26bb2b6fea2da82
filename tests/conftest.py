"""Shared, session-scoped corpora: generated once, read by many tests."""

from __future__ import annotations

import gc
import os
import shutil
from collections.abc import Iterator

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from tfclassify import testing  # noqa: E402


def pytest_collection_finish(session) -> None:
    """TensorFlow and the test modules are imported, and their objects live as long as
    the run: the collector stops scanning them (`gc.freeze`) and runs less often, since
    TF's tracing makes short-lived objects by the million."""
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)


@pytest.fixture(scope="session")
def class_tree(tmp_path_factory) -> str:
    """Valid images of varied sizes/modes/formats in 3 class folders, plus one empty class."""
    root = tmp_path_factory.mktemp("class_tree")
    testing.make_class_tree(root, per_class=12, seed=1, max_side=160)
    os.makedirs(root / "empty_class")
    return str(root)


@pytest.fixture(scope="session")
def hostile_tree(tmp_path_factory) -> tuple[str, dict[str, str]]:
    """A class tree whose `odd` class holds one file of every hostile kind."""
    root = tmp_path_factory.mktemp("hostile_tree")
    testing.make_class_tree(root, classes=("plain",), per_class=4, seed=2, max_side=96)
    kinds = testing.make_hostile_files(root / "odd")
    return str(root), kinds


@pytest.fixture(scope="session")
def converted_tree(tmp_path_factory, class_tree) -> str:
    """`class_tree` converted once, in several train shards (read only: a test that
    damages it works on a copy, `shutil.copytree(converted_tree, tmp_path / ...)`)."""
    from tfclassify.convert import convert
    from tfclassify.core.options import ConvertOptions

    out = str(tmp_path_factory.mktemp("converted_tree") / "shards")
    convert(ConvertOptions(input_dir=class_tree, output_dir=out, shard_size_mb=0.05, quiet=True))
    return out


@pytest.fixture(scope="session")
def converted_hostile(tmp_path_factory, hostile_tree):
    """`hostile_tree` converted once by 4 workers into several shards, a quarter held
    out; its DatasetInfo (read only; `.options` are the options that decide the bytes)."""
    from tfclassify.convert import convert
    from tfclassify.core.options import ConvertOptions

    out = str(tmp_path_factory.mktemp("converted_hostile") / "shards")
    return convert(
        ConvertOptions(
            input_dir=hostile_tree[0],
            output_dir=out,
            shard_size_mb=0.02,
            validation_fraction=0.25,
            num_workers=4,
            quiet=True,
        )
    )


@pytest.fixture(params=[0o022, 0o027], ids=["umask022", "umask027"])
def umask(request) -> Iterator[int]:
    """Runs a test under each usual umask (process-wide: restored after)."""
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


@pytest.fixture()
def copy_tree(tmp_path):
    """Copies a session corpus so a test may modify it."""

    def copy(src: str) -> str:
        dst = tmp_path / "input"
        shutil.copytree(src, dst)
        return str(dst)

    return copy


@pytest.fixture(scope="session")
def converted_shapes(tmp_path_factory):
    """Factory: a small converted shapes corpus with the given classes and split sizes."""

    def make(classes, splits) -> str:
        from tfclassify.convert import convert
        from tfclassify.core.options import ConvertOptions

        root = tmp_path_factory.mktemp("shapes")
        testing.make_shapes_corpus(
            root / "images", classes=classes, splits=splits, min_side=20, max_side=32
        )
        out = root / "converted"
        convert(
            ConvertOptions(
                input_dir=str(root / "images"), output_dir=str(out), num_workers=1, quiet=True
            )
        )
        return str(out)

    return make


@pytest.fixture(scope="session")
def dataset(tmp_path_factory) -> dict:
    """Hand-written shards for the reader's tests (see recordlib.write_dataset)."""
    import recordlib

    return recordlib.write_dataset(str(tmp_path_factory.mktemp("data_ds")))
