"""`validate=full` decode checks on tf.data's threads, alongside the converter's scan
and write.

The decode is the bulk of a full validation (nearly all of it entropy decoding, which
a 1/8-scale decode still does in full). Run on Python
threads it competes for the GIL with the per-image Python of the scan; run here, on
tf.data's C++ threads, it needs none, and the converter goes on scanning and writing
shards while it runs. The converter commits no shard before every check is in (see
`scan.Pending`), so a file that fails one is re-examined by the Pillow path and
the shard plan redone before anything is renamed.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Sequence

from tfclassify.core.cpus import available_cpus
from tfclassify.core.options import DEFAULT_MAX_FILE_MB

# Files per call of the check function. Verdicts arrive a chunk at a time, and each
# call ends with a drain (its last decodes leave threads idle): a chunk is large enough
# for the drain to be small, and well below the converter's lead (scan._CHECK_LEAD).
_CHUNK = 1024


class DecodeChecks:
    """Whether TF's JPEG decoder decodes each of `paths`, found in the background.

    A file is "decoded" when it is at most `max_file_bytes` long (TF reads it
    whole), starts like a JPEG, its header is within `max_pixels` (so a
    decompression bomb is never decoded), and `decode_jpeg` (TF's
    own decoder, the one the readers use) succeeds at 1/8 scale. Anything else
    (unreadable, not a JPEG, too large, corrupt) counts as failed: the caller's
    Pillow path then gives the verdict and the reason.
    Verdicts arrive in path order, a chunk at a time, so a prefix can be settled
    while the rest run.
    """

    def __init__(
        self,
        paths: Sequence[str],
        max_pixels: int,
        parallelism: int | None = None,
        max_file_bytes: int = int(DEFAULT_MAX_FILE_MB * 2**20),
    ):
        """`parallelism`: decodes at once (tf.data's threads); None: one per CPU."""
        self._count = len(paths)
        self._changed = threading.Condition()
        self._known = 0  # verdicts in for positions < _known
        self._ok = bytearray(len(paths))  # 1: decoded
        self._error: BaseException | None = None
        self._stop = False
        self._thread = threading.Thread(
            target=self._collect,
            args=(paths, max_pixels, parallelism, max_file_bytes),
            name="tfclassify-decode",
            daemon=True,
        )
        self._thread.start()

    def _collect(
        self,
        paths: Sequence[str],
        max_pixels: int,
        parallelism: int | None,
        max_file_bytes: int,
    ) -> None:
        try:
            if paths:
                import tensorflow as tf

                check = _checker(parallelism or available_cpus())
                cap = tf.constant(max_pixels, tf.int64)
                for start in range(0, len(paths), _CHUNK):
                    chunk = paths[start : start + _CHUNK]
                    # Only files that start like a JPEG, within the size cap: TF reads
                    # each checked file whole, and a stray multi-GB video must not be.
                    jpegs = [i for i, p in enumerate(chunk) if _starts_like_jpeg(p, max_file_bytes)]
                    names = tf.constant([os.fsencode(chunk[i]) for i in jpegs], tf.string)
                    decoded = check(names, cap).numpy().tolist() if jpegs else []
                    if self._stop:
                        return
                    self._advance(start, [jpegs[i] for i in decoded], start + len(chunk))
            self._advance(0, [], self._count)
        except BaseException as e:  # re-raised in the caller's thread by progress()
            self._error = e
        finally:
            with self._changed:
                self._stop = True
                self._changed.notify_all()

    def _advance(self, start: int, decoded: list[int], known: int) -> None:
        with self._changed:
            for position in decoded:
                if position >= 0:
                    self._ok[start + position] = 1
            self._known = known
            self._changed.notify_all()

    def progress(self, wait: bool = False, at_least: int = 0) -> int:
        """n: verdicts are in for positions < n (see `decoded`). Waits until
        n >= `at_least`, or for every verdict with `wait`."""
        with self._changed:
            need = self._count if wait else min(at_least, self._count)
            self._changed.wait_for(lambda: self._known >= need or self._stop)
            if self._error is not None:
                raise self._error
            return self._known

    def decoded(self, position: int) -> bool:
        """Whether the file at `position` decoded (False while its verdict is out)."""
        with self._changed:
            return position < self._known and bool(self._ok[position])

    def close(self) -> None:
        """Stops the checks (after the chunk in flight) when their verdicts are no
        longer wanted, e.g. the conversion failed."""
        self._stop = True


def _starts_like_jpeg(path: str, max_file_bytes: int) -> bool:
    if not path:  # not to be opened (see scan)
        return False
    try:
        with open(path, "rb") as f:
            return os.fstat(f.fileno()).st_size <= max_file_bytes and f.read(3) == b"\xff\xd8\xff"
    except OSError:
        return False  # the scan reports why


@functools.cache
def _checker(parallelism: int):
    """The check as one graph function, traced once per process and parallelism.

    A tf.data pipeline built in Python for every conversion would spend GIL-bound
    tracing and iterator set-up, contending with the converter's scan just as the
    decodes should start. Built inside a tf.function, the dataset is made by graph
    ops in C++ on every call.
    """
    import tensorflow as tf

    from tfclassify.core import tfdata
    from tfclassify.core.options import ReadOptions

    def decodes(position: tf.Tensor, path: tf.Tensor, max_pixels: tf.Tensor) -> tf.Tensor:
        contents = tf.io.read_file(path)
        # Errors drop the element (ignore_errors below). Only files that start like a
        # JPEG get here (`_starts_like_jpeg`); one over the cap fails the assertion
        # before any decode runs.
        shape = tf.io.extract_jpeg_shape(contents, output_type=tf.int64)
        within = tf.debugging.assert_less_equal(shape[0] * shape[1], max_pixels)
        # Gray or colour only: a CMYK JPEG goes to Pillow for conversion anyway, and
        # libjpeg would print "Unsupported color conversion request" for each.
        plain = tf.debugging.assert_equal(
            tf.reduce_any(tf.equal(shape[2], tf.constant([1, 3], tf.int64))), True
        )
        with tf.control_dependencies([within, plain]):
            # Gray output: every component is still entropy-decoded (the bitstream
            # interleaves them), without the cost of the colour conversion.
            image = tf.io.decode_jpeg(contents, channels=1, ratio=8)
        # The result must depend on the decode's data: a decode reached through control
        # edges alone is pruned. (-1 cannot happen: decode_jpeg fails or gives pixels.)
        return tf.where(tf.size(image) > 0, position, tf.constant(-1, tf.int64))

    @tf.function(
        input_signature=[tf.TensorSpec([None], tf.string), tf.TensorSpec([], tf.int64)],
        autograph=False,
    )
    def check(paths: tf.Tensor, max_pixels: tf.Tensor) -> tf.Tensor:
        """Positions in `paths` whose decode succeeded, in any order."""
        positions = tf.range(tf.size(paths, out_type=tf.int64))
        ds = tf.data.Dataset.from_tensor_slices((positions, paths))
        # Out of order: the verdicts of a chunk are handed over together.
        ds = ds.map(
            lambda i, p: decodes(i, p, max_pixels),
            num_parallel_calls=parallelism,
            deterministic=False,
        )
        # The reader's tf.data settings: no autotuning thread, and no static graph
        # rewrites, which would run at every call and apply to nothing here.
        ds = ds.ignore_errors().batch(256).with_options(tfdata.tf_data_options(ReadOptions()))
        return ds.reduce(tf.zeros([0], tf.int64), lambda acc, b: tf.concat([acc, b], 0))

    return check
