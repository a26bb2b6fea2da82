"""Deterministic test-data generators (valid and hostile image corpora) for tests,
examples, the demo and the benchmarks; kept apart from the product code."""

from tfclassify.testing.corpora import (
    HOSTILE_KINDS,
    UNREADABLE_KINDS,
    make_class_tree,
    make_hostile_files,
    make_manifest,
    make_photo_corpus,
    make_shapes_corpus,
    photo_like,
    write_image,
)

__all__ = [
    "HOSTILE_KINDS",
    "UNREADABLE_KINDS",
    "make_class_tree",
    "make_hostile_files",
    "make_manifest",
    "make_photo_corpus",
    "make_shapes_corpus",
    "photo_like",
    "write_image",
]
