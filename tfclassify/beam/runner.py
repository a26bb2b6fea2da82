"""The runner Beam jobs default to, and their pipeline options."""

from __future__ import annotations

from collections.abc import Sequence

from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

__all__ = ["LOCAL_RUNNER", "pipeline_options"]

# The local runner the jobs default to: the engine Beam's DirectRunner runs batch
# pipelines on, named itself because DirectRunner first tries to download the Prism
# runner's binary (and the portable runner a job server's).
LOCAL_RUNNER = "FnApiRunner"


def pipeline_options(args: Sequence[str] = ()) -> PipelineOptions:
    """Beam's options from command-line arguments; the runner is `LOCAL_RUNNER`
    (in-process, or `--direct_num_workers=N --direct_running_mode=multi_processing`)
    unless `--runner` names another."""
    options = PipelineOptions(list(args))
    standard = options.view_as(StandardOptions)
    if standard.runner is None:
        standard.runner = LOCAL_RUNNER
    return options
