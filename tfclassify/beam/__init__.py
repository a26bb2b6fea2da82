"""Apache Beam transforms over the library: the same reader and `Predictor`, on the
local runner here and on Dataflow, Flink or Spark for corpora that outgrow one machine.

Beam is an optional dependency (`pip install 'tfclassify[beam]'`). Importing this
package does not import `apache_beam`; its modules do, and nothing outside this
package imports them, so `import tfclassify` and the local commands work without it.

    import apache_beam as beam
    from tfclassify import InferOptions
    from tfclassify.beam import PredictDataset, WritePredictions, pipeline_options

    with beam.Pipeline(options=pipeline_options()) as p:
        predict = PredictDataset("model/", "shards/", InferOptions(top_k=3))
        p | predict | WritePredictions("out/preds.csv", top_k=predict.top_k)

The runnable job is `converters/beam_infer.py`.
"""

from __future__ import annotations

import importlib
from typing import Any

from tfclassify.core.errors import MissingDependencyError

_API = {
    "ConvertToTFRecords": "tfclassify.beam.conversion",
    "run_conversion": "tfclassify.beam.conversion",
    "DEAD_LETTER": "tfclassify.beam.inference",
    "Predictions": "tfclassify.beam.inference",
    "PredictDataset": "tfclassify.beam.inference",
    "PredictShards": "tfclassify.beam.inference",
    "WritePredictions": "tfclassify.beam.inference",
    "dataset_shards": "tfclassify.beam.inference",
    "describe_summary": "tfclassify.beam.inference",
    "pipeline_options": "tfclassify.beam.runner",
    "LOCAL_RUNNER": "tfclassify.beam.runner",
    "run_inference": "tfclassify.beam.inference",
}

__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'tfclassify.beam' has no attribute {name!r}")
    try:
        module = importlib.import_module(_API[name])
    except ModuleNotFoundError as e:
        if e.name != "apache_beam":
            raise
        raise MissingDependencyError("Apache Beam", "beam", "apache-beam") from None
    value = getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
