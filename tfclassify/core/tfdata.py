"""tf.data settings shared by every pipeline tfclassify builds.

The reader's two paths (`reading.dataset`, `reading.records`), the converter's decode
checks and the benchmark's Keras baseline must run under the same switches, or a
comparison between them measures TF's defaults rather than the pipelines. It is in
the core because both the converter and the reader use it.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from tfclassify.core.options import ReadOptions

__all__ = ["autotune_options", "parallel", "plain", "tf_data_options"]


def plain(fn):
    """Marks a tf.data function as plain graph code: it uses tf.cond explicitly, so
    AutoGraph's source conversion (most of the tracing time) buys nothing."""
    return tf.autograph.experimental.do_not_convert(fn)


def parallel(calls: int | None, deterministic: bool | None) -> dict[str, Any]:
    """`num_parallel_calls` and `deterministic` for a map or interleave stage.

    None (no parallelism) passes neither: the stage then runs in the consumer's
    thread, and tf.data warns about a `deterministic` given without parallel calls.
    """
    if calls is None:
        return {}
    return {"num_parallel_calls": calls, "deterministic": deterministic}


def autotune_options(enabled: bool = False) -> tf.data.Options:
    """Options switching only tf.data's autotuning model (see `ReadOptions.autotune`),
    for pipelines that are not readers of our shards (the benchmarks' Keras baseline)."""
    opts = tf.data.Options()
    opts.autotune.enabled = enabled
    return opts


def tf_data_options(options: ReadOptions) -> tf.data.Options:
    """The `tf.data.Options` part of `options`, for any pipeline over our shards."""
    opts = autotune_options(options.autotune)
    if options.ram_budget_mb is not None:
        opts.autotune.ram_budget = options.ram_budget_mb * 2**20
    if options.private_threadpool_size is not None:
        opts.threading.private_threadpool_size = options.private_threadpool_size
    if options.max_intra_op_parallelism is not None:
        opts.threading.max_intra_op_parallelism = options.max_intra_op_parallelism
    if options.deterministic is not None:
        opts.deterministic = options.deterministic
    opts.experimental_optimization.apply_default_optimizations = options.graph_rewrites
    return opts
