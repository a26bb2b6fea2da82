"""Convert a folder-per-class corpus (generated here) and read one record back.

    python examples/convert_folder.py [WORKDIR]

Shows the notebook API: `tfclassify.convert(ConvertOptions(...))` returns the
same information `dataset.json` records, including what was skipped and why.
"""

from __future__ import annotations

import os
import sys
import tempfile

import tfclassify
from tfclassify import testing
from tfclassify.core import schema


def main(workdir: str) -> None:
    images = os.path.join(workdir, "images")
    testing.make_class_tree(images, classes=("cat", "dog", "bird"), per_class=20, seed=0)
    testing.make_hostile_files(os.path.join(images, "dog", "odd"))  # real folders have these

    info = tfclassify.convert(
        tfclassify.ConvertOptions(
            input_dir=images,
            output_dir=os.path.join(workdir, "shards"),
            validation_fraction=0.2,
            shard_size_mb=0.5,
            quiet=True,
        )
    )
    print(f"labels: {info.labels}")
    for name, split in sorted(info.splits.items()):
        print(f"{name}: {split.num_examples} images in {len(split.shards)} shards")
    print(f"skipped {info.skipped} of {info.files_found}: {info.skipped_by_reason}")

    import tensorflow as tf

    first = next(iter(tf.data.TFRecordDataset(info.shard_paths("train")).as_numpy_iterator()))
    record = schema.parse(first)
    print(f"first record: {record.filename} ({record.text}, {record.width}x{record.height})")
    tfclassify.verify(info.directory)
    print("verify: ok")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="tfclassify_example_"))
