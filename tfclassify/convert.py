"""`python -m tfclassify.convert`: image files -> TFRecord shards and dataset.json.

Reads a folder per class (optionally below train/ and validation/) or a CSV
manifest, and writes shards, dataset.json, labels.txt and skipped.csv to
--output_dir. The same run from Python: `tfclassify.convert(ConvertOptions(...))`.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Any

from tfclassify import _callable, cli
from tfclassify.conversion.converter import convert
from tfclassify.core import metadata
from tfclassify.core.options import ConvertOptions

__all__ = ["ConvertOptions", "convert", "describe", "flags", "main", "options_from_flags"]

_DOC = __doc__  # --help's text; forward_calls adds the function's to __doc__


def _flags() -> Any:
    from absl import flags

    fv, (string, integer, real, boolean) = cli.new_flags()
    d = cli.defaults(ConvertOptions)
    string("input_dir", None, "Folder per class (optionally below train/, validation/).")
    string("manifest", None, "CSV with header path,label[,split].")
    string("output_dir", None, "Where shards and dataset.json go.")
    string("name", d["name"], "Shard name prefix.")
    real("shard_size_mb", d["shard_size_mb"], "Target shard size, MiB.")
    integer("num_workers", None, "Worker threads (default: all cores).")
    integer("seed", d["seed"], "Shuffle / split seed.")
    real("validation_fraction", d["validation_fraction"], "Stratified validation share.")
    flags.DEFINE_enum(
        "validate", "full", ["full", "header", "none"], "How hard to check images.", flag_values=fv
    )
    flags.DEFINE_enum(
        "image_format", "keep", ["keep", "jpeg", "png"], "Stored image format.", flag_values=fv
    )
    integer("resize_shorter_side", None, "Shrink so the shorter side is at most this.")
    integer("max_side", None, "Shrink so the longer side is at most this.")
    integer("jpeg_quality", d["jpeg_quality"], "Quality of encoded JPEGs.")
    integer("max_pixels", d["max_pixels"], "Refuse larger images.")
    real("max_file_mb", d["max_file_mb"], "Skip larger files, MiB (checked before reading).")
    boolean(
        "follow_external_links",
        False,
        "Follow links leading outside input_dir (or the manifest's folder); off: skipped.",
    )
    boolean("resume", False, "Finish an interrupted run in output_dir.")
    boolean("overwrite", False, "Replace a previous conversion in output_dir.")
    boolean("quiet", False, cli.QUIET_HELP)
    return fv


def flags() -> Any:
    """A new set of this command's flags, for jobs that take the same
    (converters/beam_convert.py)."""
    return _flags()


def options_from_flags(fv: Any) -> ConvertOptions:
    """ConvertOptions from the parsed flags; ConvertOptions checks every value."""
    return ConvertOptions(**{f.name: fv[f.name].value for f in dataclasses.fields(ConvertOptions)})


def describe(info: metadata.DatasetInfo) -> str:
    """The line the command prints about a finished conversion."""
    splits = ", ".join(f"{k}: {v.num_examples}" for k, v in sorted(info.splits.items()))
    shards = sum(len(s.shards) for s in info.splits.values())
    return (
        f"{cli.plural(info.accepted, 'image')} in {cli.plural(info.num_classes, 'class')}, "
        f"{cli.plural(shards, 'shard')} ({splits}) -> {info.directory}; "
        f"{info.skipped} skipped" + (f" (see {metadata.SKIPPED_FILE})" if info.skipped else "")
    )


def main(argv: list[str] | None = None) -> int:
    """`python -m tfclassify.convert`; returns the exit status (2 for user errors)."""

    def body(fv: Any) -> None:
        cli.require(fv, ("output_dir",))
        print(describe(convert(options_from_flags(fv))))

    return cli.run("tfclassify.convert", _DOC, _flags(), argv, body)


_callable.forward_calls(__name__, "convert")

if __name__ == "__main__":
    sys.exit(main())
