"""Inference: a model over a dataset in three modes, and the prediction rows and
summary it writes.
"""
