"""Lets `tfclassify.convert(...)` work whichever object the name is bound to.

Kept: importing a submodule rebinds the package attribute to the module, so without this
`import tfclassify.convert` would turn `tfclassify.convert(options)` into a call of a module.

`convert`, `explain`, `infer`, `quantize`, `train` and `verify` are both functions of the public
API and the commands run with `python -m`: the module forwards calls to its function, and shows
that function's signature and docstring to `inspect.signature` and `help`.
"""

from __future__ import annotations

import inspect
import sys
import types


def forward_calls(module_name: str, function_name: str) -> None:
    """Makes module `module_name` callable as its function `function_name`."""
    module = sys.modules[module_name]
    function = getattr(module, function_name)

    class _CallableModule(types.ModuleType):
        def __call__(self, *args, **kwargs):
            return getattr(self, function_name)(*args, **kwargs)

    module.__class__ = _CallableModule
    module.__wrapped__ = function  # inspect.signature follows it to the function
    if module_name != "__main__":  # run as a command, its docstring is the --help text
        signature = f"{function_name}{inspect.signature(function)}"
        module.__doc__ = f"{signature}\n\n{inspect.getdoc(function)}\n\n{module.__doc__}"
