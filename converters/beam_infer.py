"""Batch inference on Apache Beam: `python -m tfclassify.infer` as a Beam job, one
element per shard of a converted dataset.

Usage:
  python converters/beam_infer.py --model MODEL --data DIR --output out/preds.csv ...
  (... : more of infer's flags, and Beam's pipeline options)

It takes the flags of `python -m tfclassify.infer` (--split, --batch_size, --top_k,
--runtime, --mode, ...); --max_images does not apply (pass fewer shards), and
--skip_errors reads every shard on the reader's exact path from the start: bad records
go to the dead-letter files either way, never into a crash. Every other argument is
one of Beam's pipeline options (--runner, --direct_num_workers, --project, ...). The
runner is Beam's local FnApiRunner, in-process, unless --runner names another: the
engine the DirectRunner runs batch jobs on, named because the DirectRunner first
tries to download the Prism runner.

For --output out/preds.csv it writes out/preds-SSSSS-of-NNNNN.csv (the rows infer
writes, each file with the header), out/preds-dead_letter-SSSSS-of-NNNNN.jsonl (only
when records could not be read) and out/summary.json, and refuses to start when files
of an earlier run are there. Running it on Dataflow, Flink or Spark:
converters/README.md.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

from tfclassify import cli
from tfclassify.models.predictor import describe


def main(argv: list[str] | None = None) -> int:
    """Runs the job; returns the exit status (2 for user errors)."""
    infer_command = importlib.import_module("tfclassify.infer")

    def body(fv: Any, beam_args: list[str]) -> int:
        if fv.describe:
            print(describe(fv.describe))
            return 0
        cli.require(fv, ("model", "data", "output"))
        from tfclassify import beam

        options = infer_command.options_from_flags(fv)
        summary = beam.run_inference(fv.model, fv.data, options, beam.pipeline_options(beam_args))
        print(beam.describe_summary(summary))
        return 0

    return cli.run(
        "converters/beam_infer.py", __doc__, infer_command.flags(), argv, body, pass_through=True
    )


if __name__ == "__main__":
    sys.exit(main())
