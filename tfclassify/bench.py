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

The runtime axis: the same model written as each variant whose runtime is installed
(`--runtimes`; LiteRT fp32 and full-int8, OpenVINO f32 and NNCF int8), each with its
own model_only, pipelined and pipelined_preresized, named `figure@variant[model]`,
and its combined ceilings. `best_runtime` is the fastest on pre-resized shards;
`best_preresized_vs_tf` and `best_preresized_vs_keras` compare it with TF fp32 on
the same shards and with Keras on the original files. Random weights time the same
as trained ones; what a variant costs in accuracy is `tfclassify.quantize`'s report.

Each contender runs once to warm up (traces, page cache), then `--repeats` times,
round-robin; the median is reported. Absolute numbers drift on shared machines: the ratios,
measured in the same run, are the result. Each run's rate is printed to stderr as it
ends; the figures go to stdout (one per line) and to `--json`.
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
    # Each runtime on pre-resized shards: the input side keeps a fast model fed.
    "pipelined_preresized_vs_own_ceiling[mobilenet_v2]": 0.85,
    "pipelined_vs_keras_per_image[small_cnn]": 50.0,
    "preresized_vs_fullsize_decode": 2.5,
    "best_preresized_vs_tf[mobilenet_v2]": 2.5,
    "best_preresized_vs_keras[mobilenet_v2]": 2.5,
}
MODELS = {"small_cnn": 64, "mobilenet_v2": 224}
VARIANTS = ("fp32", "int8", "openvino-f32", "openvino-bf16", "openvino-int8")
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
    # The runtime axis: `tfclassify.quantize` variants, those whose runtime is here.
    variants: tuple[str, ...] = VARIANTS
    representative_samples: int = 200


def round_robin(
    contenders: dict[str, Callable[[], tuple[int, float]]],
    repeats: int,
    progress: Callable[[str, int, float], None] | None = None,
) -> dict:
    """Median images/s per contender, timed round-robin (A B C, A B C, ...).

    Each contender runs once to warm up (traces, page cache), then `repeats` times;
    each run returns (images, seconds). Interleaving spreads a shared machine's slow
    and fast spells over every contender instead of letting one contender's repeats
    catch them all. `progress(name, run, images_per_s)` hears of every run as it
    ends (run 0: the warm-up).
    """
    rates: dict[str, list[float]] = {k: [] for k in contenders}
    for run in range(repeats + 1):
        for name, fn in contenders.items():
            n, seconds = fn()
            if run:
                rates[name].append(n / seconds)
            if progress is not None:
                progress(name, run, n / seconds)
    return {k: statistics.median(v) for k, v in rates.items()}


def timed(fn: Callable[[], int]) -> Callable[[], tuple[int, float]]:
    """`fn` (which returns a count of images) as a `round_robin` contender."""

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


def _decode_only(directory: str, read: Any, images: int) -> Callable[[], tuple[int, float]]:
    """The reader alone over `directory`, `images` images or more, timed from its first
    batch: a ceiling is a steady-state rate, without the pipeline's start-up."""
    import tfclassify

    batches = math.ceil(images / read.batch_size)

    def run() -> tuple[int, float]:
        ds = tfclassify.make_dataset(directory, read).repeat().take(batches + 1)
        it = iter(ds)
        next(it)
        start = time.perf_counter()
        n = sum(int(batch["image"].shape[0]) for batch in it)
        return n, time.perf_counter() - start

    return run


def _model_only(predictor: Any, size: int, images: int, batch_size: int) -> Callable:
    """The model alone on one random batch, `images` images' worth of calls."""
    import numpy as np

    random_batch = np.random.default_rng(0).random((batch_size, size, size, 3), np.float32)
    if predictor.input_quantization is not None:  # as infer feeds it: quantized in advance
        random_batch = predictor.input_quantization.quantize(random_batch)
    calls = math.ceil(images / batch_size)

    def run() -> int:
        for _ in range(calls):
            predictor.predict(random_batch)
        return calls * batch_size

    return timed(run)


def _mode(
    predictor: Any, mode: str, directory: str, max_images: int, batch_size: int
) -> Callable[[], tuple[int, float]]:
    import tfclassify
    from tfclassify.core.options import InferOptions

    options = InferOptions(mode=mode, batch_size=batch_size, max_images=max_images, top_k=1)

    def run() -> tuple[int, float]:
        r = tfclassify.infer(predictor, directory, options)
        return r.count, r.seconds

    return run


def _keras_contenders(
    arch: str, cfg: BenchConfig, dirs: dict[str, str], model_dir: str, predictor: Any
) -> dict[str, Callable[[], tuple[int, float]]]:
    """Keras's own reader + predict on the original files, and its per-image loop."""
    import keras

    from tfclassify.core import tfdata
    from tfclassify.models import architectures

    size, bs = MODELS[arch], cfg.batch_size
    limit = _images_per_pass(arch, cfg)
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
        ds = ds.with_options(tfdata.autotune_options(_read(arch, cfg).autotune))
        return int(keras_model.predict(ds, verbose=0).shape[0])

    def keras_per_image() -> int:
        # The one-image-at-a-time loop of many tutorials: load, resize, predict.
        files = keras_files[: cfg.sequential_images]
        for f in files:
            image = keras.utils.img_to_array(keras.utils.load_img(f, target_size=(size, size)))
            keras_model.predict(image[None] / 255.0, verbose=0)
        return len(files)

    return {"keras_baseline": timed(keras_baseline), "keras_per_image": timed(keras_per_image)}


def _images_per_pass(arch: str, cfg: BenchConfig) -> int:
    return cfg.mobilenet_images if arch == "mobilenet_v2" else cfg.num_images


def _read(arch: str, cfg: BenchConfig) -> Any:
    from tfclassify.core.options import ReadOptions

    return ReadOptions(image_size=MODELS[arch], batch_size=cfg.batch_size)


def _bench_model(arch: str, cfg: BenchConfig, dirs: dict[str, str]) -> dict[str, float]:
    """Every contender for one model, round-robin; the TF model's figures keep their
    plain names, another runtime's carry `@runtime`."""
    import tfclassify
    from tfclassify.core import metadata

    size, bs = MODELS[arch], cfg.batch_size
    labels = metadata.load(dirs["full"]).labels
    model_dir = _save_model(arch, size, labels, os.path.join(cfg.workdir, f"model_{arch}"))
    predictor = tfclassify.Predictor.load(model_dir)
    limit = _images_per_pass(arch, cfg)
    read = _read(arch, cfg)
    small = dirs[f"small_{size}"]
    decode_images = max(limit, cfg.min_decode_images)

    contenders = {
        "decode_only": _decode_only(dirs["full"], read, decode_images),
        "decode_only_preresized": _decode_only(small, read, decode_images),
        "sequential": _mode(predictor, "sequential", dirs["full"], cfg.sequential_images, bs),
        "batch": _mode(predictor, "batch", dirs["full"], limit, bs),
    }
    runtimes = {"tensorflow": predictor, **_other_runtimes(arch, cfg, model_dir, small)}
    for name, p in runtimes.items():
        at = "" if name == "tensorflow" else f"@{name}"
        contenders[f"model_only{at}"] = _model_only(p, size, limit, bs)
        contenders[f"pipelined{at}"] = _mode(p, "pipelined", dirs["full"], limit, bs)
        contenders[f"pipelined_preresized{at}"] = _mode(p, "pipelined", small, limit, bs)
    contenders.update(_keras_contenders(arch, cfg, dirs, model_dir, predictor))
    fig = round_robin(contenders, cfg.repeats, progress=_progress(arch))
    for name in runtimes:
        at = "" if name == "tensorflow" else f"@{name}"
        model = fig[f"model_only{at}"]
        fig[f"combined_ceiling{at}"] = 1 / (1 / fig["decode_only"] + 1 / model)
        fig[f"combined_ceiling_preresized{at}"] = 1 / (
            1 / fig["decode_only_preresized"] + 1 / model
        )
    return fig


def _other_runtimes(arch: str, cfg: BenchConfig, model_dir: str, shards: str) -> dict[str, Any]:
    """A `Predictor` per variant asked for whose runtime is here, written by
    `tfclassify.quantize` (calibrated on `shards`); the others are named on stderr."""
    import tfclassify
    from tfclassify.core.options import QuantizeOptions
    from tfclassify.models import quantization

    available = quantization.available_variants()
    names = []
    for name in cfg.variants:
        why = available.get(name, "unknown variant")
        if why is None:
            names.append(name)
        else:
            print(f"  [{arch}] {name} skipped: {why}", file=sys.stderr, flush=True)
    if not names:
        return {}
    report = tfclassify.quantize(
        model_dir,
        shards,
        QuantizeOptions(
            output_dir=os.path.join(cfg.workdir, f"variants_{arch}"),
            variants=tuple(names),
            representative_samples=cfg.representative_samples,
            select="none",
            batch_size=cfg.batch_size,
            max_images=cfg.batch_size,  # the bench times them; quantize only checks they run
            overwrite=True,
        ),
    )
    return {
        v.name: tfclassify.Predictor.load(v.path, precision=v.run_precision)
        for v in report.variants
    }


def _progress(arch: str) -> Callable[[str, int, float], None]:
    def say(name: str, run: int, rate: float) -> None:
        what = "warm-up" if run == 0 else f"run {run}"
        print(f"  [{arch}] {name} {what}: {rate:.1f} images/s", file=sys.stderr, flush=True)

    return say


def _ratios(arch: str, fig: dict[str, float]) -> dict[str, Any]:
    """The ratios the targets read, for one model's figures."""
    out: dict[str, Any] = {
        "pipelined_vs_combined_ceiling": fig["pipelined"] / fig["combined_ceiling"],
        "pipelined_vs_sequential": fig["pipelined"] / fig["sequential"],
        "pipelined_vs_keras": fig["pipelined"] / fig["keras_baseline"],
        # The path the product recommends: shards pre-resized at conversion, against
        # Keras reading the original files.
        "pipelined_preresized_vs_keras": fig["pipelined_preresized"] / fig["keras_baseline"],
        "pipelined_vs_keras_per_image": fig["pipelined"] / fig["keras_per_image"],
        # Upper bounds of the ratios above: pipelined cannot beat the combined ceiling
        # (both stages share the same cores), so neither can any ratio built on it.
        "ceiling_vs_sequential": fig["combined_ceiling"] / fig["sequential"],
        "ceiling_vs_keras": fig["combined_ceiling"] / fig["keras_baseline"],
        "preresized_vs_fullsize_decode": fig["decode_only_preresized"] / fig["decode_only"],
    }
    best, best_rate = "tensorflow", fig["pipelined_preresized"]
    for key, rate in fig.items():
        if key.startswith("pipelined_preresized@"):
            runtime = key.split("@", 1)[1]
            at = f"@{runtime}"
            ceiling = fig[f"combined_ceiling_preresized{at}"]
            out[f"pipelined_preresized_vs_own_ceiling{at}"] = rate / ceiling
            out[f"pipelined_vs_own_ceiling{at}"] = (
                fig[f"pipelined{at}"] / fig[f"combined_ceiling{at}"]
            )
            if rate > best_rate:
                best, best_rate = runtime, rate
    tf_preresized = fig["pipelined_preresized"] / fig["combined_ceiling_preresized"]
    out["pipelined_preresized_vs_own_ceiling"] = tf_preresized
    out["best_preresized_vs_tf"] = best_rate / fig["pipelined_preresized"]
    out["best_preresized_vs_keras"] = best_rate / fig["keras_baseline"]
    out["best_ceiling_vs_keras"] = (
        max(v for k, v in fig.items() if k.startswith("combined_ceiling_preresized"))
        / fig["keras_baseline"]
    )
    out = {k: round(v, 3) for k, v in out.items()}
    out["best_runtime"] = best
    out["bound_by"] = "model" if fig["model_only"] < fig["decode_only"] else "input pipeline"
    return out


def run(cfg: BenchConfig) -> dict[str, Any]:
    """Runs every contender; returns {figure: value} (also printed)."""
    from tfclassify.models import runtime

    runtime.apply_threads(cfg.threads)
    import tensorflow as tf

    from tfclassify.core.cpus import cpu_flags

    dirs = _prepare(cfg)
    out: dict[str, Any] = {
        "num_images": cfg.num_images,
        "batch_size": cfg.batch_size,
        "cpus": os.cpu_count(),
        "cpu": cpu_flags(),
        "gpus": len(tf.config.list_physical_devices("GPU")),
    }
    for arch in cfg.models:
        fig = _bench_model(arch, cfg, dirs)
        out.update({f"{k}[{arch}]": round(v, 1) for k, v in fig.items()})
        out.update({f"{k}[{arch}]": v for k, v in _ratios(arch, fig).items()})
    out["threads"] = runtime.effective_threads()
    return out


def _target(key: str) -> float | None:
    """The target of a figure: by its full name, then without its runtime and model."""
    base, _, model = key.partition("[")
    plain = base.split("@", 1)[0]
    for name in (key, f"{plain}[{model}", base, plain):
        if name in TARGETS:
            return TARGETS[name]
    return None


def report(figures: dict[str, Any], targets: dict[str, float] | None = None) -> str:
    """One line per figure, each ratio with its target (this module's, or `targets`)."""
    lines = []
    for k, v in figures.items():
        t = _target(k) if targets is None else targets.get(k)
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
    flags.DEFINE_list(
        "variants",
        list(VARIANTS),
        "tfclassify.quantize variants timed beside TF fp32 (those whose runtime is here).",
        flag_values=fv,
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
            variants=tuple(f.variants),
        )
        figures = run(cfg)
        print(report(figures))
        with open(f.json, "w", encoding="utf-8") as fh:
            json.dump(figures, fh, indent=2)
        print(f"figures written to {os.path.abspath(f.json)}")
        if not f.workdir:
            shutil.rmtree(workdir, ignore_errors=True)

    return cli.run("tfclassify.bench", __doc__, _flags(), argv, body)


if __name__ == "__main__":
    sys.exit(main())
