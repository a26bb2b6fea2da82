"""Reading converted shards: `dataset.make_dataset` (decode, resize, normalize,
batch), the exact bad-record path, and `verification.verify`.
"""
