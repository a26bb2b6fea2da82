"""Lets `tfclassify.convert(...)` work whichever object the name is bound to.

`convert`, `infer`, `train` and `verify` are both functions of the public API and
submodules run with `python -m`. Importing a submodule rebinds the package
attribute to the module, so the module itself forwards calls to its function.
"""

from __future__ import annotations

import sys
import types


def forward_calls(module_name: str, function_name: str) -> None:
    """Makes module `module_name` callable as its function `function_name`."""
    module = sys.modules[module_name]

    class _CallableModule(types.ModuleType):
        def __call__(self, *args, **kwargs):
            return getattr(self, function_name)(*args, **kwargs)

    module.__class__ = _CallableModule
