"""The example notebooks are made from example scripts, so that the code lives once.

A script in the percent format (as jupytext and editors read it): `# %%` starts a
code cell, `# %% [markdown]` a markdown cell whose lines are comments (`# text`).
What comes before the first marker (the script's docstring) stays in the script.
The notebook has no outputs, and ids numbered in cell order: the same script
always makes the same file.

    python tests/notebooks.py   # rewrites every notebook from its script
"""

from __future__ import annotations

import os
import re
import sys

import nbformat

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# notebook: the script it is made from, both relative to the repository root.
NOTEBOOKS = {"examples/quickstart.ipynb": "examples/quickstart.py"}

_MARKER = re.compile(r"^# %%(?: \[(\w+)\])?\s*$")
_METADATA = {
    "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
    "language_info": {"name": "python"},
}


def _cell(kind: str, lines: list[str], index: int) -> nbformat.NotebookNode:
    while lines and not lines[-1].strip():
        lines.pop()
    while lines and not lines[0].strip():
        lines.pop(0)
    if kind == "markdown":
        text = "\n".join(re.sub(r"^# ?", "", line) for line in lines)
        cell = nbformat.v4.new_markdown_cell(text)
    else:
        cell = nbformat.v4.new_code_cell("\n".join(lines))
    cell.id = f"cell-{index:02d}"
    return cell


def from_script(path: str) -> nbformat.NotebookNode:
    """The notebook of the percent-format script at `path`.

    Raises:
      ValueError: the script has no cell, or a marker names a kind other than markdown.
    """
    with open(path, encoding="utf-8") as f:
        text = f.read()
    cells: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        marker = _MARKER.match(line)
        if marker:
            kind = marker.group(1) or "code"
            if kind not in ("code", "markdown"):
                raise ValueError(f"{path}: unknown cell kind in {line!r}")
            cells.append((kind, []))
        elif cells:
            cells[-1][1].append(line)
    if not cells:
        raise ValueError(f"{path}: no '# %%' cell marker")
    notebook = nbformat.v4.new_notebook(metadata=_METADATA)
    notebook.cells = [_cell(kind, lines, i) for i, (kind, lines) in enumerate(cells)]
    return notebook


def text(notebook: nbformat.NotebookNode) -> str:
    """The notebook file's text, as `nbformat.write` writes it."""
    return nbformat.writes(notebook) + "\n"


def main() -> None:
    for notebook, script in NOTEBOOKS.items():
        with open(os.path.join(ROOT, notebook), "w", encoding="utf-8") as f:
            f.write(text(from_script(os.path.join(ROOT, script))))
        print(f"{notebook} <- {script}")


if __name__ == "__main__":
    sys.exit(main())
