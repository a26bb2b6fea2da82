"""examples/quickstart.ipynb: made from its script, committed without outputs, and it runs.

The notebook is executed as a user runs it, in a Jupyter kernel (nbclient), in a
temporary working folder; by default on the small data QUICKSTART_QUICK=1 asks for,
and on the full data in the slow suite. (tests/test_examples.py runs the script.)
"""

from __future__ import annotations

import base64
import glob
import io
import json
import os

import nbformat
import notebooks
import pytest
from PIL import Image
from test_examples import check_quickstart

QUICKSTART = os.path.join(notebooks.ROOT, "examples", "quickstart.ipynb")
# The pictures the notebook shows, each also saved in its working folder.
PICTURES = ("grid.png", "predictions.png", "explain.png", "bench.png")
CELL_SECONDS = 300  # one cell's time budget: the full run's longest (the bench) takes ~1 min


@pytest.mark.parametrize("notebook", sorted(notebooks.NOTEBOOKS))
def test_notebook_is_made_from_its_script(notebook):
    with open(os.path.join(notebooks.ROOT, notebook), encoding="utf-8") as f:
        committed = f.read()
    made = notebooks.text(
        notebooks.from_script(os.path.join(notebooks.ROOT, notebooks.NOTEBOOKS[notebook]))
    )
    assert committed == made, f"{notebook} differs from its script: run python tests/notebooks.py"


@pytest.mark.parametrize("notebook", sorted(notebooks.NOTEBOOKS))
def test_notebook_is_committed_without_outputs(notebook):
    nb = nbformat.read(os.path.join(notebooks.ROOT, notebook), as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code
    assert all(c.outputs == [] and c.execution_count is None for c in code)


def test_a_script_becomes_cells(tmp_path):
    script = tmp_path / "s.py"
    script.write_text(
        '"""Script only."""\n\n# %% [markdown]\n# # Title\n#\n# Text, then code.\n\n'
        "# %%\nx = 1\n\n\ny = x + 1\n\n\n# %%\nprint(y)\n",
        encoding="utf-8",
    )
    nb = notebooks.from_script(str(script))
    assert [(c.cell_type, c.source) for c in nb.cells] == [
        ("markdown", "# Title\n\nText, then code."),
        ("code", "x = 1\n\n\ny = x + 1"),
        ("code", "print(y)"),
    ]
    assert [c.id for c in nb.cells] == ["cell-00", "cell-01", "cell-02"]
    script.write_text("x = 1\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no '# %%' cell marker"):
        notebooks.from_script(str(script))


def _run(tmp_path, monkeypatch, quick: bool) -> tuple[nbformat.NotebookNode, str]:
    """Executes the quickstart in `tmp_path`; returns it with its outputs, and the
    folder it worked in (a new temporary folder: TMPDIR is `tmp_path/tmp` here)."""
    from nbclient import NotebookClient

    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))  # the kernel inherits this environment
    if quick:
        monkeypatch.setenv("QUICKSTART_QUICK", "1")
    else:
        monkeypatch.delenv("QUICKSTART_QUICK", raising=False)
    nb = nbformat.read(QUICKSTART, as_version=4)
    client = NotebookClient(
        nb,
        timeout=CELL_SECONDS,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()  # a cell's error raises CellExecutionError, naming the cell
    (workdir,) = glob.glob(str(tmp / "*"))
    return nb, workdir


def _outputs(nb: nbformat.NotebookNode, code: str) -> list:
    """The outputs of the one code cell whose source holds `code`."""
    (cell,) = [c for c in nb.cells if c.cell_type == "code" and code in c.source]
    return cell.outputs


def _check_run(nb: nbformat.NotebookNode, workdir: str) -> None:
    """What the script's run is checked for, and what the notebook showed."""
    printed = "".join(o.text for c in nb.cells for o in c.get("outputs", []) if "text" in o)
    check_quickstart(workdir, printed)
    for name in PICTURES:
        (shown,) = [o.data for o in _outputs(nb, f'"{name}")') if "image/png" in o.get("data", {})]
        # The picture saved, drawn again (a layout engine may move a pixel or two).
        png = io.BytesIO(base64.b64decode(shown["image/png"]))
        with Image.open(png) as picture, Image.open(os.path.join(workdir, name)) as saved:
            assert picture.size == saved.size, name
    (table,) = _outputs(nb, "inspect_dataset(")
    assert "<table" in table.data["text/html"] and "triangle" in table.data["text/html"]


def test_quickstart_runs(tmp_path, monkeypatch):
    nb, workdir = _run(tmp_path, monkeypatch, quick=True)
    _check_run(nb, workdir)


@pytest.mark.slow
def test_quickstart_runs_on_full_data_and_learns(tmp_path, monkeypatch):
    nb, workdir = _run(tmp_path, monkeypatch, quick=False)
    _check_run(nb, workdir)
    with open(os.path.join(workdir, "quantized", "report.json"), encoding="utf-8") as f:
        report = json.load(f)
    assert report["float_model"]["top1_accuracy"] > 0.6  # three balanced classes: chance is 1/3


def test_a_figure_shows_itself_in_a_notebook():
    from tfclassify.core import plotting

    figure = plotting.new_figure(2, 1, dpi=50)
    figure.add_subplot().plot([0, 1])
    with Image.open(io.BytesIO(figure._repr_png_())) as picture:
        assert picture.format == "PNG" and picture.size == (100, 50)
