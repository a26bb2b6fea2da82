"""The public API's shape: the command modules are callable as their functions and show
their signatures; importing the package and its stages does not start TensorFlow."""

from __future__ import annotations

import importlib
import inspect
import os
import pydoc
import subprocess
import sys

import pytest

import tfclassify
from tfclassify.core.errors import InputError

# Module path of each callable command -> where its function lives.
COMMANDS = {
    "convert": "tfclassify.conversion.converter",
    "verify": "tfclassify.reading.verification",
    "infer": "tfclassify.inference.modes",
    "train": "tfclassify.models.training",
    "quantize": "tfclassify.inference.variants",
    "explain": "tfclassify.inference.explanation",
}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_a_command_module_shows_its_function(name):
    module = importlib.import_module(f"tfclassify.{name}")  # rebinds tfclassify.<name>
    function = getattr(importlib.import_module(COMMANDS[name]), name)
    assert getattr(tfclassify, name) is module
    assert inspect.signature(module) == inspect.signature(function)
    assert "*args" not in str(inspect.signature(module))
    assert module.__doc__.startswith(f"{name}{inspect.signature(function)}")
    text = pydoc.render_doc(module)
    assert inspect.getdoc(function).splitlines()[0] in text


def test_a_command_module_forwards_calls(tmp_path):
    import tfclassify.verify

    with pytest.raises(InputError):
        tfclassify.verify(str(tmp_path / "missing"))


def test_importing_the_package_and_its_stages_does_not_start_tensorflow():
    modules = [
        "tfclassify",
        "tfclassify.core",
        "tfclassify.conversion",
        "tfclassify.reading",
        "tfclassify.models",
        "tfclassify.inference",
        "tfclassify.testing",
        *(f"tfclassify.{name}" for name in COMMANDS),
        "tfclassify.inspect",
    ]
    code = f"import sys\nimport {', '.join(modules)}\nprint('tensorflow' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=os.environ, check=True
    )
    assert out.stdout.strip() == "False"


def test_the_inspect_api():
    """The command module `tfclassify.inspect` is not callable (it would shadow the
    standard library's `inspect` for `from tfclassify import *`); its functions are
    in the API under their own names."""
    from tfclassify.inference.examples import show_examples
    from tfclassify.reading.inspection import inspect_dataset

    assert tfclassify.inspect_dataset is inspect_dataset
    assert tfclassify.show_examples is show_examples
    assert "inspect" not in tfclassify.__all__


def test_thread_options_apply_through_the_api():
    """A notebook applies `ThreadOptions` before TF starts with the public API."""
    code = (
        "import sys, tfclassify\n"
        "threads = tfclassify.apply_threads(tfclassify.ThreadOptions(intra_op=1))\n"
        "print(threads['intra_op'], 'tensorflow' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["1", "True"]
