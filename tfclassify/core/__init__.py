"""What every stage shares: the record schema, dataset.json, options, errors, file helpers.

Nothing here imports another tfclassify package.
"""
