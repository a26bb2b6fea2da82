"""`python -m tfclassify.convert`: image files -> TFRecord shards and dataset.json.

Reads a folder per class (optionally below train/ and validation/) or a CSV
manifest, and writes shards, dataset.json, labels.txt and skipped.csv to
--output_dir. The same run from Python: `tfclassify.convert(ConvertOptions(...))`.
"""

from __future__ import annotations

import dataclasses

from tfclassify import _callable
from tfclassify.conversion.converter import convert
from tfclassify.core import metadata
from tfclassify.core.options import ConvertOptions

__all__ = ["ConvertOptions", "convert", "main", "options_from_flags"]


def _define_flags() -> None:
    from absl import flags

    d = ConvertOptions.__dataclass_fields__
    flags.DEFINE_string(
        "input_dir", None, "Folder per class (optionally below train/, validation/)."
    )
    flags.DEFINE_string("manifest", None, "CSV with header path,label[,split].")
    flags.DEFINE_string("output_dir", None, "Where shards and dataset.json go.")
    flags.DEFINE_string("name", d["name"].default, "Shard name prefix.")
    flags.DEFINE_float("shard_size_mb", d["shard_size_mb"].default, "Target shard size, MiB.")
    flags.DEFINE_integer("num_workers", None, "Worker threads (default: all cores).")
    flags.DEFINE_integer("seed", d["seed"].default, "Shuffle / split seed.")
    flags.DEFINE_float(
        "validation_fraction", d["validation_fraction"].default, "Stratified validation share."
    )
    flags.DEFINE_enum("validate", "full", ["full", "header", "none"], "How hard to check images.")
    flags.DEFINE_enum("image_format", "keep", ["keep", "jpeg", "png"], "Stored image format.")
    flags.DEFINE_integer("resize_shorter_side", None, "Shrink so the shorter side is at most this.")
    flags.DEFINE_integer("max_side", None, "Shrink so the longer side is at most this.")
    flags.DEFINE_integer("jpeg_quality", d["jpeg_quality"].default, "Quality of encoded JPEGs.")
    flags.DEFINE_integer("max_pixels", d["max_pixels"].default, "Refuse larger images.")
    flags.DEFINE_float(
        "max_file_mb", d["max_file_mb"].default, "Skip larger files, MiB (checked before reading)."
    )
    flags.DEFINE_bool(
        "follow_external_links",
        False,
        "Follow links leading outside input_dir (or the manifest's folder); off: skipped.",
    )
    flags.DEFINE_bool("resume", False, "Finish an interrupted run in output_dir.")
    flags.DEFINE_bool("overwrite", False, "Replace a previous conversion in output_dir.")
    flags.DEFINE_bool("quiet", False, "No progress bar.")


def options_from_flags() -> ConvertOptions:
    from absl import flags

    f = flags.FLAGS
    return ConvertOptions(
        **{fld.name: getattr(f, fld.name) for fld in dataclasses.fields(ConvertOptions)}
    )


def main(argv: list[str]) -> None:
    """`python -m tfclassify.convert` (run by `cli.run_app`: user errors are one line)."""
    from absl import flags

    from tfclassify import cli

    cli.no_positional(argv)
    # Checked here, not by absl's mark_flag_as_required: its error is two lines and
    # exit status 1, where every other user error is one line and status 2.
    cli.require(flags.FLAGS, ("output_dir",))
    info = convert(options_from_flags())
    print(
        f"{info.accepted} images in "
        f"{sum(len(s.shards) for s in info.splits.values())} shards "
        f"({', '.join(f'{k}: {v.num_examples}' for k, v in sorted(info.splits.items()))}) "
        f"-> {info.directory}; {info.skipped} skipped"
        + (f" (see {metadata.SKIPPED_FILE})" if info.skipped else "")
    )


_callable.forward_calls(__name__, "convert")

if __name__ == "__main__":
    from tfclassify import cli

    _define_flags()
    cli.run_app(main)
