"""Conversion on Apache Beam: `python -m tfclassify.convert` as a Beam job.

Usage:
  python converters/beam_convert.py --input_dir DIR --output_dir OUT ...
  (... : more of convert's flags, and Beam's pipeline options)

It takes the flags of `python -m tfclassify.convert` and writes the same files:
for the same inputs and flags, shards, dataset.json, labels.txt and skipped.csv are
byte for byte the local converter's. --resume does not apply (the runner retries
failed work; --overwrite replaces an earlier conversion), and --output_dir may be a
URL such as gs://bucket/dir. Every other argument is one of Beam's pipeline options
(--runner, --direct_num_workers, --project, ...). The runner is Beam's local
FnApiRunner, in-process, unless --runner names another. Running it on Dataflow,
Flink or Spark: converters/README.md.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

from tfclassify import cli


def main(argv: list[str] | None = None) -> int:
    """Runs the job; returns the exit status (2 for user errors)."""
    convert_command = importlib.import_module("tfclassify.convert")

    def body(fv: Any, beam_args: list[str]) -> int:
        cli.require(fv, ("output_dir",))
        from tfclassify import beam

        options = convert_command.options_from_flags(fv)
        info = beam.run_conversion(options, beam.pipeline_options(beam_args))
        print(convert_command.describe(info))
        return 0

    return cli.run(
        "converters/beam_convert.py",
        __doc__,
        convert_command.flags(),
        argv,
        body,
        pass_through=True,
    )


if __name__ == "__main__":
    sys.exit(main())
