"""tfclassify: offline image-classification data processing on TensorFlow.

The stages live in packages (`conversion`, `reading`, `models`, `inference`) over a
shared `core`; imports run one way: commands -> stages -> core. The top level holds
what a user runs: one thin module per command, and this curated API.

The public API is resolved lazily (PEP 562) so `import tfclassify` does not
import TensorFlow, and `python -m tfclassify.convert` does not import its own
module twice. `convert`, `verify`, `train`, `infer`, `quantize` and `explain` are
submodules (they also serve `python -m`) that are callable as their main function, so
`tfclassify.convert(options)` works however the name was imported.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_API = {
    "ConvertOptions": "tfclassify.core.options",
    "ReadOptions": "tfclassify.core.options",
    "ThreadOptions": "tfclassify.core.options",
    "InferOptions": "tfclassify.core.options",
    "TrainOptions": "tfclassify.core.options",
    "QuantizeOptions": "tfclassify.core.options",
    "TfclassifyError": "tfclassify.core.errors",
    "OptionsError": "tfclassify.core.errors",
    "InputError": "tfclassify.core.errors",
    "OutputError": "tfclassify.core.errors",
    "DataError": "tfclassify.core.errors",
    "convert": "tfclassify.convert",
    "verify": "tfclassify.verify",
    "make_dataset": "tfclassify.reading.dataset",
    "Predictor": "tfclassify.models.predictor",
    "infer": "tfclassify.infer",
    "train": "tfclassify.train",
    "quantize": "tfclassify.quantize",
    "explain": "tfclassify.explain",
    "draw_explanation": "tfclassify.inference.explanation",
    "load_dataset_info": "tfclassify.core.metadata",
    "inspect_dataset": "tfclassify.reading.inspection",
    "apply_threads": "tfclassify.models.runtime",
    "show_examples": "tfclassify.inference.examples",
}
_RENAMED = {"load_dataset_info": "load"}
_CALLABLE_MODULES = ("convert", "verify", "train", "infer", "quantize", "explain")

__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'tfclassify' has no attribute {name!r}")
    module = importlib.import_module(_API[name])
    if name in _CALLABLE_MODULES:
        return module  # importing it bound it here already
    value = getattr(module, _RENAMED.get(name, name))
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
