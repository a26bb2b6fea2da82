"""`python -m tfclassify.bench`: every stage and mode timed side by side in one run.

For each model (the tiny CNN and MobileNetV2, randomly initialised: speed does
not depend on the weights), on one generated corpus of photo-sized JPEGs:

  decode_only        make_dataset over the shards, no model      (input ceiling;
                     steady state: timed from the first batch on)
  model_only         the compiled model on random batches        (compute ceiling)
  combined_ceiling   1 / (1/decode + 1/model): both stages sharing the same cores
  sequential/batch/pipelined   tfclassify.infer in each mode
  pipelined_preresized         pipelined over shards pre-resized at conversion
                               (to the crop's shorter side, JPEG quality 85)
  keras_baseline     keras.utils.image_dataset_from_directory + model.predict
  keras_per_image    keras load_img + model.predict, one image at a time (the naive
                     loop of many tutorials; not a tfclassify mode)

Each contender runs once to warm up (traces, page cache), then `--repeats` times,
round-robin; the median is reported. Absolute numbers drift on shared machines: the ratios,
measured in the same run, are the result. Figures go to stdout (one per line) and
to `--json`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from tfclassify import cli
from tfclassify.core.errors import OptionsError
from tfclassify.core.options import ThreadOptions

TARGETS = {
    "pipelined_vs_combined_ceiling": 0.90,
    "pipelined_vs_sequential[small_cnn]": 50.0,
    "pipelined_vs_keras[mobilenet_v2]": 1.5,
    "preresized_vs_fullsize_decode": 3.0,
}
MODELS = {"small_cnn": 64, "mobilenet_v2": 224}
PRERESIZE_QUALITY = 85


@dataclasses.dataclass(frozen=True)
class BenchConfig:
    workdir: str
    # The tiny CNN's passes read them all: enough that the pipelined mode's start-up
    # (iterator, first batch), which the steady-state ceilings leave out, is a few
    # percent of a pass (benchmarks/NOTES.md).
    num_images: int = 4000
    models: tuple[str, ...] = ("small_cnn", "mobilenet_v2")
    batch_size: int = 32
    repeats: int = 3
    sequential_images: int = 128  # one-at-a-time is slow: time a prefix, report images/s
    # MobileNetV2 passes use a prefix of the corpus: long enough that the pipeline's
    # start-up is a few percent of a pass, as on a real dataset.
    mobilenet_images: int = 512
    min_decode_images: int = 2000  # decode-only passes: long enough for a steady state
    # Applied before TF is imported; every contender, Keras's too, runs under it.
    threads: ThreadOptions = ThreadOptions()


def round_robin(contenders: dict[str, Callable[[], tuple[int, float]]], repeats: int) -> dict:
    """Median images/s per contender, timed round-robin (A B C, A B C, ...).

    Each contender runs once to warm up (traces, page cache), then `repeats` times;
    each run returns (images, seconds). Interleaving spreads a shared machine's slow
    and fast spells over every contender instead of letting one contender's repeats
    catch them all.
    """
    for fn in contenders.values():
        fn()
    rates: dict[str, list[float]] = {k: [] for k in contenders}
    for _ in range(repeats):
        for name, fn in contenders.items():
            n, seconds = fn()
            rates[name].append(n / seconds)
    return {k: statistics.median(v) for k, v in rates.items()}


def _timed(fn: Callable[[], int]) -> Callable[[], tuple[int, float]]:
    def run() -> tuple[int, float]:
        start = time.perf_counter()
        n = fn()
        return n, time.perf_counter() - start

    return run


def _prepare(cfg: BenchConfig) -> dict[str, Any]:
    """Corpus, full-size shards and pre-resized shards per input size."""
    import tfclassify
    from tfclassify import testing

    images = os.path.join(cfg.workdir, "images")
    if not os.path.isdir(images):
        testing.make_photo_corpus(images, num_images=cfg.num_images)
    found = sum(len(files) for _, _, files in os.walk(images))
    if found != cfg.num_images:  # shards and subsets below were made from that corpus
        raise SystemExit(
            f"error: {cfg.workdir} holds a corpus of {found} images, not {cfg.num_images}; "
            "use another --workdir"
        )
    dirs = {"images": images}

    def convert(name: str, **kw: Any) -> str:
        out = os.path.join(cfg.workdir, name)
        if not os.path.isfile(os.path.join(out, "dataset.json")):
            tfclassify.convert(
                tfclassify.ConvertOptions(input_dir=images, output_dir=out, quiet=True, **kw)
            )
        return out

    dirs["full"] = convert("shards_full")
    for model in cfg.models:
        size = MODELS[model]
        # The shorter side the center-crop transform resizes to (resize_target rounds
        # it the same way): the reader then crops without resampling.
        # Quality 85 with 4:2:0 chroma, the usual setting for training/eval copies: the
        # default 95 (4:4:4, for faithful conversions) makes much larger files that
        # decode slower (benchmarks/NOTES.md).
        dirs[f"small_{size}"] = convert(
            f"shards_{size}_q{PRERESIZE_QUALITY}",
            resize_shorter_side=round(size / 0.875),
            image_format="jpeg",
            jpeg_quality=PRERESIZE_QUALITY,
        )
    return dirs


def _save_model(arch: str, size: int, labels: tuple[str, ...], out: str) -> str:
    from tfclassify.models import architectures

    if not os.path.isfile(os.path.join(out, architectures.KERAS_FILE)):
        os.makedirs(out, exist_ok=True)
        model = architectures.build_model(arch, (size, size), len(labels))
        architectures.save_model(model, labels, out)
    return out


def _keras_subset(
    predictor: Any, dirs: dict[str, str], root: str, limit: int, batch_size: int
) -> list[str]:
    """Hard links under `root` to the first `limit` images the tfclassify modes read.

    The keys come from the pipelined mode itself (every mode reads the same records
    in the same order), so the Keras contenders decode the same images: not the first
    files by name, which are mostly one class, and the per-image loop's prefix is the
    sequential mode's. Rebuilt each run: a folder an earlier run left may hold others.

    Returns:
      The linked files, in the order the modes read them.
    """
    import tfclassify
    from tfclassify.core.options import InferOptions

    options = InferOptions(
        batch_size=batch_size, max_images=limit, top_k=1, keep_probabilities=False
    )
    keys = tfclassify.infer(predictor, dirs["full"], options).keys
    shutil.rmtree(root, ignore_errors=True)
    files = [os.path.join(root, key) for key in keys]
    for key, dst in zip(keys, files, strict=True):
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        os.link(os.path.join(dirs["images"], key), dst)
    return files


def _bench_model(arch: str, cfg: BenchConfig, dirs: dict[str, str]) -> dict[str, float]:
    import keras
    import numpy as np

    import tfclassify
    from tfclassify.core import metadata, tfdata
    from tfclassify.core.options import InferOptions, ReadOptions
    from tfclassify.models import architectures

    size = MODELS[arch]
    labels = metadata.load(dirs["full"]).labels
    model_dir = _save_model(arch, size, labels, os.path.join(cfg.workdir, f"model_{arch}"))
    predictor = tfclassify.Predictor.load(model_dir)
    limit = cfg.mobilenet_images if arch == "mobilenet_v2" else cfg.num_images
    bs = cfg.batch_size
    read = ReadOptions(image_size=size, batch_size=bs)

    def decode_only(directory: str) -> Callable[[], tuple[int, float]]:
        # Passes over the corpus until min_decode_images: a single pass over a small
        # corpus takes a fraction of a second, mostly pipeline start-up.
        batches = math.ceil(max(limit, cfg.min_decode_images) / bs)

        def run() -> tuple[int, float]:
            # A ceiling is a steady-state rate: the clock starts at the first batch, so
            # the pipeline's start-up (threads, opening shards: as long as a whole
            # pass over small pre-resized images) is not in it.
            ds = tfclassify.make_dataset(directory, read).repeat().take(batches + 1)
            it = iter(ds)
            next(it)
            start = time.perf_counter()
            n = sum(int(batch["image"].shape[0]) for batch in it)
            return n, time.perf_counter() - start

        return run

    random_batch = np.random.default_rng(0).random((bs, size, size, 3), np.float32)

    def model_only() -> int:
        for _ in range(math.ceil(limit / bs)):
            predictor.predict(random_batch)
        return math.ceil(limit / bs) * bs

    def mode(name: str, directory: str, max_images: int) -> Callable[[], tuple[int, float]]:
        def run() -> tuple[int, float]:
            r = tfclassify.infer(
                predictor,
                directory,
                InferOptions(mode=name, batch_size=bs, max_images=max_images, top_k=1),
            )
            return r.count, r.seconds

        return run

    keras_model = keras.models.load_model(os.path.join(model_dir, architectures.KERAS_FILE))
    keras_root = os.path.join(cfg.workdir, f"keras_subset_{limit}")
    keras_files = _keras_subset(predictor, dirs, keras_root, limit, bs)

    def keras_baseline() -> int:
        ds = keras.utils.image_dataset_from_directory(
            keras_root, image_size=(size, size), batch_size=bs, shuffle=False, verbose=False
        ).map(lambda x, y: x / 255.0)
        # The one tf.data setting tfclassify changes (ReadOptions.autotune), given to
        # Keras too: without it a pass may end late waiting for the autotuner's
        # thread, and the baseline would carry a TF quirk, not its design.
        ds = ds.with_options(tfdata.autotune_options(read.autotune))
        return int(keras_model.predict(ds, verbose=0).shape[0])

    def keras_per_image() -> int:
        # The one-image-at-a-time loop of many tutorials: load, resize, predict.
        files = keras_files[: cfg.sequential_images]
        for f in files:
            image = keras.utils.img_to_array(keras.utils.load_img(f, target_size=(size, size)))
            keras_model.predict(image[None] / 255.0, verbose=0)
        return len(files)

    fig = round_robin(
        {
            "decode_only": decode_only(dirs["full"]),
            "decode_only_preresized": decode_only(dirs[f"small_{size}"]),
            "model_only": _timed(model_only),
            "sequential": mode("sequential", dirs["full"], cfg.sequential_images),
            "batch": mode("batch", dirs["full"], limit),
            "pipelined": mode("pipelined", dirs["full"], limit),
            "pipelined_preresized": mode("pipelined", dirs[f"small_{size}"], limit),
            "keras_baseline": _timed(keras_baseline),
            "keras_per_image": _timed(keras_per_image),
        },
        cfg.repeats,
    )
    fig["combined_ceiling"] = 1 / (1 / fig["decode_only"] + 1 / fig["model_only"])
    return fig


def run(cfg: BenchConfig) -> dict[str, Any]:
    """Runs every contender; returns {figure: value} (also printed)."""
    from tfclassify.models import runtime

    runtime.apply_threads(cfg.threads)
    import tensorflow as tf

    dirs = _prepare(cfg)
    out: dict[str, Any] = {
        "num_images": cfg.num_images,
        "batch_size": cfg.batch_size,
        "cpus": os.cpu_count(),
        "gpus": len(tf.config.list_physical_devices("GPU")),
    }
    for arch in cfg.models:
        fig = _bench_model(arch, cfg, dirs)
        for k, v in fig.items():
            out[f"{k}[{arch}]"] = round(v, 1)
        out[f"pipelined_vs_combined_ceiling[{arch}]"] = round(
            fig["pipelined"] / fig["combined_ceiling"], 3
        )
        out[f"pipelined_vs_sequential[{arch}]"] = round(fig["pipelined"] / fig["sequential"], 2)
        out[f"pipelined_vs_keras[{arch}]"] = round(fig["pipelined"] / fig["keras_baseline"], 2)
        # Not the target's comparison (that one reads full-size shards), but the path the
        # product recommends: shards pre-resized at conversion, against Keras reading
        # the original files.
        out[f"pipelined_preresized_vs_keras[{arch}]"] = round(
            fig["pipelined_preresized"] / fig["keras_baseline"], 2
        )
        out[f"pipelined_vs_keras_per_image[{arch}]"] = round(
            fig["pipelined"] / fig["keras_per_image"], 1
        )
        # Upper bounds of the ratios above: pipelined cannot beat the combined ceiling
        # (both stages share the same cores), so neither can any ratio built on it.
        out[f"ceiling_vs_sequential[{arch}]"] = round(
            fig["combined_ceiling"] / fig["sequential"], 2
        )
        out[f"ceiling_vs_keras[{arch}]"] = round(fig["combined_ceiling"] / fig["keras_baseline"], 2)
        out[f"preresized_vs_fullsize_decode[{arch}]"] = round(
            fig["decode_only_preresized"] / fig["decode_only"], 2
        )
        bound = "model" if fig["model_only"] < fig["decode_only"] else "input pipeline"
        out[f"bound_by[{arch}]"] = bound
    out["threads"] = runtime.effective_threads()
    return out


def _target(key: str) -> float | None:
    if key in TARGETS:
        return TARGETS[key]
    base = key.split("[", 1)[0]
    return TARGETS.get(base)


def report(figures: dict[str, Any]) -> str:
    lines = []
    for k, v in figures.items():
        t = _target(k)
        suffix = ""
        if t is not None and isinstance(v, (int, float)):
            suffix = f"  (target >= {t}: {'PASS' if v >= t else 'MISS'})"
        unit = " images/s" if isinstance(v, float) and "_vs_" not in k else ""
        lines.append(f"{k}: {v}{unit}{suffix}")
    return "\n".join(lines)


def _flags() -> Any:
    from absl import flags

    fv, (string, integer, _, boolean) = cli.new_flags()
    integer(
        "num_images", BenchConfig.num_images, "Photo-sized JPEGs (640x480, ~50 KB) to generate."
    )
    flags.DEFINE_list(
        "models", list(MODELS), "Models to time: small_cnn, mobilenet_v2.", flag_values=fv
    )
    integer("batch_size", 32, "Images per model call.")
    integer("repeats", 3, "Timed repetitions per contender (median reported).")
    string("workdir", None, "Corpus/shards/models cache (default: a temp dir).")
    string("json", "bench.json", "Where to write the figures.")
    boolean("onednn", None, cli.ONEDNN_HELP)
    return fv


def main(argv: list[str] | None = None) -> int:
    """`python -m tfclassify.bench`; returns the exit status (2 for user errors)."""

    def body(f: Any) -> None:
        for m in f.models:
            if m not in MODELS:
                raise OptionsError(f"unknown model {m!r}; choose from {list(MODELS)}")
        workdir = f.workdir or tempfile.mkdtemp(prefix="tfclassify_bench_")
        cfg = BenchConfig(
            workdir=workdir,
            num_images=f.num_images,
            models=tuple(f.models),
            batch_size=f.batch_size,
            repeats=f.repeats,
            mobilenet_images=min(BenchConfig.mobilenet_images, f.num_images),
            sequential_images=min(128, f.num_images),
            threads=ThreadOptions(onednn=f.onednn),
        )
        figures = run(cfg)
        print(report(figures))
        with open(f.json, "w", encoding="utf-8") as fh:
            json.dump(figures, fh, indent=2)
        if not f.workdir:
            shutil.rmtree(workdir, ignore_errors=True)

    return cli.run("tfclassify.bench", __doc__, _flags(), argv, body)


if __name__ == "__main__":
    sys.exit(main())
