"""Convert from a CSV manifest (`path,label,split`) instead of a folder layout.

    python examples/convert_manifest.py [WORKDIR]

A manifest is how most labelled corpora arrive (an export from a labelling
tool); paths are relative to the CSV's folder and must stay inside it.
"""

from __future__ import annotations

import os
import sys
import tempfile

import tfclassify
from tfclassify import testing


def main(workdir: str) -> None:
    files = testing.make_class_tree(os.path.join(workdir, "pool"), per_class=10, seed=3)
    rows = []
    for i, path in enumerate(files):
        rel = os.path.relpath(path, workdir)
        label = rel.split(os.sep)[1]
        rows.append((rel, label, "test" if i % 5 == 0 else "train"))
    manifest = testing.make_manifest(
        os.path.join(workdir, "labels.csv"), rows, header=("path", "label", "split")
    )
    out = os.path.join(workdir, "shards")
    info = tfclassify.convert(
        tfclassify.ConvertOptions(manifest=manifest, output_dir=out, quiet=True)
    )
    for name, split in sorted(info.splits.items()):
        print(f"{name}: {split.num_examples} images")
    print(f"dataset.json, labels.txt and skipped.csv are in {out}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="tfclassify_example_"))
