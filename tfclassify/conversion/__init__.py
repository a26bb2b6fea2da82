"""Conversion: image files or a CSV manifest -> TFRecord shards and dataset.json.

List the inputs, check and normalise each image, plan the shards (pure), write
them atomically; `converter.convert` drives the run.
"""
