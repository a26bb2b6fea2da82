"""`validate=full` decode checks on tf.data's threads, alongside the converter's scan
and write.

The decode is the bulk of a full validation (~1 ms per photo-sized JPEG, nearly all
of it entropy decoding, which a 1/8-scale decode still does in full). Run on Python
threads it competes for the GIL with the per-image Python of the scan; run here, on
tf.data's C++ threads, it needs none, and the converter goes on scanning and writing
shards while it runs. The converter commits no shard before every check is in (see
`convert._Pending`), so a file that fails one is re-examined by the Pillow path and
the shard plan redone before anything is renamed.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence

_BATCH = 64  # verdicts handed to Python at a time


class DecodeChecks:
    """Whether TF's JPEG decoder decodes each of `paths`, found in the background.

    A file is "decoded" when it starts like a JPEG, its header is within
    `max_pixels` (so a decompression bomb is never decoded), and `decode_jpeg` (TF's
    own decoder, the one the readers use) succeeds at 1/8 scale. Anything else
    (unreadable, not a JPEG, too large, corrupt) counts as failed: the caller's
    Pillow path then gives the verdict and the reason.
    Verdicts arrive in path order, so a prefix can be settled while the rest run.
    """

    def __init__(self, paths: Sequence[str], max_pixels: int, parallelism: int | None = None):
        """`parallelism`: decodes at once (tf.data's threads); None: one per CPU."""
        self._count = len(paths)
        self._changed = threading.Condition()
        self._known = 0  # verdicts in for positions < _known
        self._ok = bytearray(len(paths))  # 1: decoded
        self._error: BaseException | None = None
        self._stop = False
        self._thread = threading.Thread(
            target=self._collect,
            args=(paths, max_pixels, parallelism),
            name="tfclassify-decode",
            daemon=True,
        )
        self._thread.start()

    def _collect(self, paths: Sequence[str], max_pixels: int, parallelism: int | None) -> None:
        try:
            if paths:
                for positions, ok in _pipeline(paths, max_pixels, parallelism).as_numpy_iterator():
                    if self._stop:
                        return
                    self._advance(positions.tolist(), ok.tolist())
            self._advance([], [], end=self._count)
        except BaseException as e:  # re-raised in the caller's thread by progress()
            self._error = e
        finally:
            with self._changed:
                self._stop = True
                self._changed.notify_all()

    def _advance(self, positions: list[int], ok: list[bool], end: int | None = None) -> None:
        # Positions come out in order; one that errored never does (its byte stays 0).
        with self._changed:
            for position, decoded in zip(positions, ok, strict=True):
                self._ok[position] = decoded
            if positions:
                self._known = positions[-1] + 1
            if end is not None:
                self._known = end
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
        """Stops the checks (after the batch in flight) when their verdicts are no
        longer wanted, e.g. the conversion failed."""
        self._stop = True


def _pipeline(paths: Sequence[str], max_pixels: int, parallelism: int | None):
    import tensorflow as tf

    def decodes(position: tf.Tensor, path: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        contents = tf.io.read_file(path)

        def check() -> tf.Tensor:
            shape = tf.io.extract_jpeg_shape(contents, output_type=tf.int64)
            return tf.cond(
                shape[0] * shape[1] <= max_pixels,
                # Gray output: every component is still entropy-decoded (the
                # bitstream interleaves them), without the colour conversion: ~7%.
                lambda: tf.size(tf.io.decode_jpeg(contents, channels=1, ratio=8)) > 0,
                lambda: tf.constant(False),
            )

        is_jpeg = tf.strings.substr(contents, 0, 3) == b"\xff\xd8\xff"
        return position, tf.cond(is_jpeg, check, lambda: tf.constant(False))

    # Paths as bytes: a file name that is not valid UTF-8 still round-trips.
    ds = tf.data.Dataset.from_tensor_slices(
        (tf.range(len(paths), dtype=tf.int64), [os.fsencode(p) for p in paths])
    )
    plain = tf.autograph.experimental.do_not_convert  # graph code as written: no AutoGraph
    calls = parallelism or tf.data.AUTOTUNE
    ds = ds.map(plain(decodes), num_parallel_calls=calls, deterministic=True)
    # A read or decode error drops its element: its position never comes out.
    ds = ds.ignore_errors()
    from tfclassify import data  # imports TF: not before the pipeline is built

    return ds.batch(_BATCH).prefetch(2).with_options(data.autotune_options())
