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
measured in the same run, are the result. While a contender runs, a bar on stderr
counts its images (`--quiet`: none; where stderr is not a terminal, a line every few
seconds instead); each run's rate is printed to stderr as it ends; each figure is
printed to stdout (one line) as soon as it is known (a contender's median after its
last run), and all go to `--json` (default ./bench.json; the last
line names it). `--chart bench.png` draws images/s per mode and runtime with the
ceilings as reference lines (needs `tfclassify[plot]`); `--from_json bench.json`
prints and draws an earlier run's figures without running anything.

Each ratio with a target is printed with PASS or MISS, or, when the target is above
the most the ratio can reach on this host, "out of reach here" with that ceiling. A
pipelined contender cannot beat its combined ceiling (both stages share the cores),
so a ratio's ceiling is its numerator's combined ceiling over its denominator as
measured (`CEILINGS`; each is a printed figure):

  pipelined[_preresized]_vs_own_ceiling, pipelined_vs_combined_ceiling   1
  pipelined_vs_sequential         ceiling_vs_sequential = combined_ceiling / sequential
  pipelined_vs_keras              ceiling_vs_keras = combined_ceiling / keras_baseline
  pipelined_preresized_vs_keras   ceiling_preresized_vs_keras
                                    = combined_ceiling_preresized / keras_baseline
  pipelined_vs_keras_per_image    ceiling_vs_keras_per_image
                                    = combined_ceiling / keras_per_image
  best_preresized_vs_tf           best_ceiling_vs_tf = max over runtimes of
                                    combined_ceiling_preresized@runtime / pipelined_preresized
  best_preresized_vs_keras        best_ceiling_vs_keras = max over runtimes of
                                    combined_ceiling_preresized@runtime / keras_baseline

`preresized_vs_fullsize_decode` compares two ceilings: nothing in the run bounds it.
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
from collections.abc import Callable, Mapping
from typing import Any, TextIO

from tfclassify import cli
from tfclassify.core import plotting
from tfclassify.core.errors import InputError, OptionsError, OutputError
from tfclassify.core.options import ThreadOptions
from tfclassify.core.progress import Progress

TARGETS = {
    "pipelined_vs_combined_ceiling": 0.90,
    # Each runtime on pre-resized shards: the input side keeps a fast model fed.
    "pipelined_preresized_vs_own_ceiling[mobilenet_v2]": 0.85,
    "pipelined_vs_keras_per_image[small_cnn]": 50.0,
    "preresized_vs_fullsize_decode": 2.5,
    "best_preresized_vs_tf[mobilenet_v2]": 2.5,
    "best_preresized_vs_keras[mobilenet_v2]": 2.5,
}
# The most each ratio can reach on this host: a number, or the figure of the same
# model that holds it (the formulas are in the module docstring).
CEILINGS: dict[str, float | str] = {
    "pipelined_vs_combined_ceiling": 1.0,
    "pipelined_vs_own_ceiling": 1.0,
    "pipelined_preresized_vs_own_ceiling": 1.0,
    "pipelined_vs_sequential": "ceiling_vs_sequential",
    "pipelined_vs_keras": "ceiling_vs_keras",
    "pipelined_preresized_vs_keras": "ceiling_preresized_vs_keras",
    "pipelined_vs_keras_per_image": "ceiling_vs_keras_per_image",
    "best_preresized_vs_tf": "best_ceiling_vs_tf",
    "best_preresized_vs_keras": "best_ceiling_vs_keras",
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
    quiet: bool = False  # no progress bars (the lines of each run stay)


def round_robin(
    contenders: dict[str, Callable[[], tuple[int, float]]],
    repeats: int,
    progress: Callable[[str, int, float], None] | None = None,
    done: Callable[[str, float], None] | None = None,
    start: Callable[[str, int], None] | None = None,
) -> dict:
    """Median images/s per contender, timed round-robin (A B C, A B C, ...).

    Each contender runs once to warm up (traces, page cache), then `repeats` times;
    each run returns (images, seconds). Interleaving spreads a shared machine's slow
    and fast spells over every contender instead of letting one contender's repeats
    catch them all. `start(name, run)` hears of every run as it starts (run 0: the
    warm-up), `progress(name, run, images_per_s)` as it ends; `done(name, median)`
    of each contender's median as soon as its last run ends.
    """
    rates: dict[str, list[float]] = {k: [] for k in contenders}
    for run in range(repeats + 1):
        for name, fn in contenders.items():
            if start is not None:
                start(name, run)
            n, seconds = fn()
            if run:
                rates[name].append(n / seconds)
            if progress is not None:
                progress(name, run, n / seconds)
            if run == repeats and done is not None:
                done(name, statistics.median(rates[name]))
    return {k: statistics.median(v) for k, v in rates.items()}


class Runs:
    """One model's contender runs as people see them: a bar on stderr while each runs,
    which the contender advances (`bar`), and a line when it ends.

    A `round_robin`'s `start` and `progress`. The bar is left out when quiet, and
    goes when its run ends (the run's line says how it went).
    """

    def __init__(self, arch: str | None = None, quiet: bool = False) -> None:
        self._tag = f"[{arch}] " if arch else ""
        self._quiet = quiet
        self._label = ""

    def start(self, name: str, run: int) -> None:
        self._label = f"{self._tag}{name} {_run_name(run)}"

    def bar(self, total: int | None = None) -> Progress:
        """The bar of the run that has started."""
        return Progress(self._label, total, quiet=self._quiet, leave=False)

    def progress(self, name: str, run: int, rate: float) -> None:
        text = f"  {self._tag}{name} {_run_name(run)}: {rate:.1f} images/s"
        print(text, file=sys.stderr, flush=True)


def _run_name(run: int) -> str:
    return "warm-up" if run == 0 else f"run {run}"


def _bar(runs: Runs | None, total: int | None = None) -> Progress:
    return runs.bar(total) if runs is not None else Progress("", total, quiet=True)


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
                tfclassify.ConvertOptions(input_dir=images, output_dir=out, quiet=cfg.quiet, **kw)
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
        batch_size=batch_size, max_images=limit, top_k=1, keep_probabilities=False, quiet=True
    )
    keys = tfclassify.infer(predictor, dirs["full"], options).keys
    shutil.rmtree(root, ignore_errors=True)
    files = [os.path.join(root, key) for key in keys]
    for key, dst in zip(keys, files, strict=True):
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        os.link(os.path.join(dirs["images"], key), dst)
    return files


def _decode_only(
    directory: str, read: Any, images: int, runs: Runs | None = None
) -> Callable[[], tuple[int, float]]:
    """The reader alone over `directory`, `images` images or more, timed from its first
    batch: a ceiling is a steady-state rate, without the pipeline's start-up."""
    import tfclassify

    batches = math.ceil(images / read.batch_size)

    def run() -> tuple[int, float]:
        ds = tfclassify.make_dataset(directory, read).repeat().take(batches + 1)
        it = iter(ds)
        next(it)
        n = 0
        with _bar(runs, batches * read.batch_size) as bar:
            start = time.perf_counter()
            for batch in it:
                images = int(batch["image"].shape[0])
                n += images
                bar.update(images)
            return n, time.perf_counter() - start

    return run


def _model_only(
    predictor: Any, size: int, images: int, batch_size: int, runs: Runs | None = None
) -> Callable:
    """The model alone on one random batch, `images` images' worth of calls."""
    import numpy as np

    random_batch = np.random.default_rng(0).random((batch_size, size, size, 3), np.float32)
    if predictor.input_quantization is not None:  # as infer feeds it: quantized in advance
        random_batch = predictor.input_quantization.quantize(random_batch)
    calls = math.ceil(images / batch_size)

    def run() -> int:
        with _bar(runs, calls * batch_size) as bar:
            for _ in range(calls):
                predictor.predict(random_batch)
                bar.update(batch_size)
        return calls * batch_size

    return timed(run)


def _mode(
    predictor: Any, mode: str, directory: str, max_images: int, batch_size: int, runs: Runs
) -> Callable[[], tuple[int, float]]:
    import tfclassify
    from tfclassify.core.options import InferOptions

    options = InferOptions(mode=mode, batch_size=batch_size, max_images=max_images, top_k=1)

    def run() -> tuple[int, float]:
        with runs.bar() as bar:  # infer sets its total
            r = tfclassify.infer(predictor, directory, options, progress=bar)
        return r.count, r.seconds

    return run


def _keras_contenders(
    arch: str, cfg: BenchConfig, dirs: dict[str, str], model_dir: str, predictor: Any, runs: Runs
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
        with runs.bar(len(keras_files)) as bar:
            counted = _keras_counter(bar, bs, len(keras_files))
            return int(keras_model.predict(ds, verbose=0, callbacks=[counted]).shape[0])

    def keras_per_image() -> int:
        # The one-image-at-a-time loop of many tutorials: load, resize, predict.
        files = keras_files[: cfg.sequential_images]
        with runs.bar(len(files)) as bar:
            for f in files:
                image = keras.utils.img_to_array(keras.utils.load_img(f, target_size=(size, size)))
                keras_model.predict(image[None] / 255.0, verbose=0)
                bar.update()
        return len(files)

    return {"keras_baseline": timed(keras_baseline), "keras_per_image": timed(keras_per_image)}


def _keras_counter(bar: Progress, batch_size: int, total: int) -> Any:
    """A Keras callback that advances `bar` by each predicted batch."""
    import keras

    class Counted(keras.callbacks.Callback):
        def on_predict_batch_end(self, batch: int, logs: Any = None) -> None:
            bar.update(min(batch_size, total - bar.n))

    return Counted()


def _images_per_pass(arch: str, cfg: BenchConfig) -> int:
    return cfg.mobilenet_images if arch == "mobilenet_v2" else cfg.num_images


def _read(arch: str, cfg: BenchConfig) -> Any:
    from tfclassify.core.options import ReadOptions

    return ReadOptions(image_size=MODELS[arch], batch_size=cfg.batch_size)


def _bench_model(
    arch: str,
    cfg: BenchConfig,
    dirs: dict[str, str],
    done: Callable[[str, float], None] | None = None,
) -> dict[str, float]:
    """Every contender for one model, round-robin; the TF model's figures keep their
    plain names, another runtime's carry `@runtime`. `done` as in `round_robin`."""
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
    runs = Runs(arch, cfg.quiet)

    contenders = {
        "decode_only": _decode_only(dirs["full"], read, decode_images, runs),
        "decode_only_preresized": _decode_only(small, read, decode_images, runs),
        "sequential": _mode(predictor, "sequential", dirs["full"], cfg.sequential_images, bs, runs),
        "batch": _mode(predictor, "batch", dirs["full"], limit, bs, runs),
    }
    runtimes = {"tensorflow": predictor, **_other_runtimes(arch, cfg, model_dir, small)}
    for name, p in runtimes.items():
        at = "" if name == "tensorflow" else f"@{name}"
        contenders[f"model_only{at}"] = _model_only(p, size, limit, bs, runs)
        contenders[f"pipelined{at}"] = _mode(p, "pipelined", dirs["full"], limit, bs, runs)
        contenders[f"pipelined_preresized{at}"] = _mode(p, "pipelined", small, limit, bs, runs)
    contenders.update(_keras_contenders(arch, cfg, dirs, model_dir, predictor, runs))
    fig = round_robin(contenders, cfg.repeats, runs.progress, done, runs.start)
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
            quiet=cfg.quiet,
        ),
    )
    return {
        v.name: tfclassify.Predictor.load(v.path, precision=v.run_precision)
        for v in report.variants
    }


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
        "ceiling_preresized_vs_keras": fig["combined_ceiling_preresized"] / fig["keras_baseline"],
        "ceiling_vs_keras_per_image": fig["combined_ceiling"] / fig["keras_per_image"],
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
    # The best runtime cannot beat the highest combined ceiling on pre-resized shards.
    best_ceiling = max(v for k, v in fig.items() if k.startswith("combined_ceiling_preresized"))
    out["best_ceiling_vs_tf"] = best_ceiling / fig["pipelined_preresized"]
    out["best_ceiling_vs_keras"] = best_ceiling / fig["keras_baseline"]
    out = {k: round(v, 3) for k, v in out.items()}
    out["best_runtime"] = best
    out["bound_by"] = "model" if fig["model_only"] < fig["decode_only"] else "input pipeline"
    return out


def run(cfg: BenchConfig, out: TextIO | None = None) -> dict[str, Any]:
    """Runs every contender; returns {figure: value}.

    Args:
      cfg: what to time.
      out: where each figure's `line` is printed as soon as it is known (a
        contender's median after its last run); None: nowhere.
    """
    from tfclassify.models import runtime

    runtime.apply_threads(cfg.threads)
    import tensorflow as tf

    from tfclassify.core.cpus import cpu_flags

    results = Report(out)
    results.add(
        {
            "num_images": cfg.num_images,
            "batch_size": cfg.batch_size,
            "cpus": os.cpu_count(),
            "cpu": cpu_flags(),
            "gpus": len(tf.config.list_physical_devices("GPU")),
        }
    )
    dirs = _prepare(cfg)
    for arch in cfg.models:

        def done(name: str, rate: float, arch: str = arch) -> None:
            results.add({f"{name}[{arch}]": round(rate, 1)})

        fig = _bench_model(arch, cfg, dirs, done)
        derived = {f"{k}[{arch}]": round(v, 1) for k, v in fig.items()}
        results.add({k: v for k, v in derived.items() if k not in results.figures})
        results.add({f"{k}[{arch}]": v for k, v in _ratios(arch, fig).items()})
    results.add({"threads": runtime.effective_threads()})
    return results.figures


def _lookup(key: str, table: Mapping[str, Any]) -> Any:
    """A figure's entry in `table`: by its full name, then without its runtime and model."""
    base, _, model = key.partition("[")
    plain = base.split("@", 1)[0]
    for name in (key, f"{plain}[{model}", base, plain):
        if name in table:
            return table[name]
    return None


def _target(key: str) -> float | None:
    """The target of one of this module's figures (`TARGETS`)."""
    return _lookup(key, TARGETS)


def _ceiling(key: str, figures: Mapping[str, Any], ceilings: Mapping[str, Any]) -> float | None:
    """The most ratio `key` can reach: its `ceilings` entry, a number or the name of the
    figure (of the same model) that holds it; None when unknown."""
    entry = _lookup(key, ceilings)
    if isinstance(entry, str):
        _, bracket, model = key.partition("[")
        entry = figures.get(f"{entry}{bracket}{model}")
    return float(entry) if isinstance(entry, (int, float)) else None


def line(
    key: str,
    value: Any,
    figures: Mapping[str, Any],
    targets: Mapping[str, float] = TARGETS,
    ceilings: Mapping[str, float | str] = CEILINGS,
) -> str:
    """The report line of one figure: `key: value`, a rate with its unit, a ratio with
    its target and whether it was met, or out of reach when above the ratio's ceiling.

    Args:
      key, value: the figure.
      figures: every figure of the run (a ratio's ceiling is one of them).
      targets: {ratio: target}, by full name or without runtime and model.
      ceilings: {ratio: ceiling or the name of the figure that holds it}, as `targets`.
    """
    suffix = ""
    target = _lookup(key, targets)
    if target is not None and isinstance(value, (int, float)):
        verdict = "PASS" if value >= target else "MISS"
        ceiling = _ceiling(key, figures, ceilings)
        if value < target and ceiling is not None and ceiling < target:
            verdict = f"out of reach here: ceiling {round(ceiling, 2)}x"
        suffix = f"  (target >= {target}: {verdict})"
    unit = " images/s" if isinstance(value, float) and "_vs_" not in key else ""
    return f"{key}: {value}{unit}{suffix}"


def report(
    figures: Mapping[str, Any],
    targets: Mapping[str, float] = TARGETS,
    ceilings: Mapping[str, float | str] = CEILINGS,
) -> str:
    """One `line` per figure (targets and ceilings: this module's by default)."""
    return "\n".join(line(k, v, figures, targets, ceilings) for k, v in figures.items())


class Report:
    """A run's figures, each printed as its `line` the moment it is known.

    Args:
      out: where lines go (None: nowhere).
      targets, ceilings: as `line` takes them.
    """

    def __init__(
        self,
        out: TextIO | None = None,
        targets: Mapping[str, float] = TARGETS,
        ceilings: Mapping[str, float | str] = CEILINGS,
    ) -> None:
        self.figures: dict[str, Any] = {}
        self._out, self._targets, self._ceilings = out, targets, ceilings

    def add(self, figures: Mapping[str, Any]) -> None:
        """Adds new `figures` and prints their lines, once all are added (a ratio's line
        reads its ceiling, which may come with it)."""
        self.figures.update(figures)
        if self._out is None:
            return
        for key in figures:
            text = line(key, self.figures[key], self.figures, self._targets, self._ceilings)
            print(text, file=self._out, flush=True)


def write_json(figures: Mapping[str, Any], path: str) -> str:
    """Writes `figures` to `path` as JSON and says where; returns the absolute path."""
    path = os.path.abspath(path)
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(figures, fh, indent=2)
    print(f"figures written to {path}", flush=True)
    return path


def load_json(path: str) -> dict[str, Any]:
    """The figures an earlier run wrote to `path` (`--json`).

    Raises:
      InputError: `path` is missing or holds no JSON object.
    """
    try:
        with open(path, encoding="utf-8") as fh:
            figures = json.load(fh)
    except FileNotFoundError:
        raise InputError(f"no figures file {path!r}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{path!r} is not a figures JSON file: {e}") from None
    if not isinstance(figures, dict):
        raise InputError(f"{path!r} is not a figures JSON file: not an object")
    return figures


# A chart's rows per runtime, top to bottom; Keras's baselines form a group of their own.
_MODES = ("sequential", "batch", "pipelined", "pipelined_preresized")
_KERAS = ("keras_baseline", "keras_per_image")
_COLORS = {"pipelined": "tab:blue", "pipelined_preresized": "tab:orange"}


def _rates(figures: Mapping[str, Any]) -> dict[str, dict[str, dict[str, float]]]:
    """{model: {runtime: {figure: images/s}}} of the rates among `figures` (TF first)."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for key, value in figures.items():
        base, bracket, model = key.partition("[")
        rate = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not bracket or "_vs_" in base or not rate:
            continue
        name, _, runtime = base.partition("@")
        runtimes = out.setdefault(model.rstrip("]"), {"tensorflow": {}})
        runtimes.setdefault(runtime or "tensorflow", {})[name] = float(value)
    return out


def _rows(runtimes: dict[str, dict[str, float]]) -> list[tuple[str, str, float, float | None]]:
    """(group, mode, images/s, the bar's combined ceiling) per bar of one model's panel."""
    rows = []
    for group, rates in runtimes.items():
        for mode in _MODES:
            if mode in rates:
                name = "combined_ceiling" + ("_preresized" if mode.endswith("preresized") else "")
                rows.append((group, mode, rates[mode], rates.get(name)))
    tf = runtimes["tensorflow"]
    rows += [("keras", mode, tf[mode], None) for mode in _KERAS if mode in tf]
    return rows


def chart(figures: Mapping[str, Any], path: str | None = None) -> Any:
    """Draws images/s per model, runtime and mode, with the ceilings as reference lines.

    One panel per model, one bar per contender, grouped by runtime (TF's modes, each
    other runtime's pipelined passes, Keras's baselines). Reference lines: the
    reader's ceilings (decode_only, decode_only_preresized) across the panel, each
    runtime's model_only across its group, and each bar's combined ceiling across
    the bar (a reader's ceiling far beyond all of them is named in the legend).

    Args:
      figures: `run`'s figures, or a bench.json loaded (`load_json`).
      path: where to save the chart as PNG; None: not saved.

    Returns:
      The matplotlib Figure, drawn on the Agg canvas (no display needed, pyplot's
      backend left alone); a notebook shows it when it is returned.

    Raises:
      MissingDependencyError: matplotlib is not installed.
      InputError: `figures` hold no contender's images/s.
    """
    plotting.require_matplotlib()
    panels = {m: r for m, r in _rates(figures).items() if _rows(r)}
    if not panels:
        raise InputError("no images/s figures to draw (names like pipelined[small_cnn])")
    rows = {m: _rows(r) for m, r in panels.items()}
    height = sum(0.3 * len(r) + 1.0 for r in rows.values()) + 0.6
    fig = plotting.new_figure(11, height)
    fig.set_layout_engine("constrained")
    axes = fig.subplots(
        len(panels),
        1,
        squeeze=False,
        gridspec_kw={"height_ratios": [len(r) + 3 for r in rows.values()]},
    )[:, 0]
    title = "tfclassify.bench: images/s (median)"
    if "cpus" in figures:
        title += f", {figures['cpus']} CPUs, batch {figures.get('batch_size')}"
    fig.suptitle(title)
    for ax, (model, runtimes) in zip(axes, panels.items(), strict=True):
        _panel(ax, model, runtimes, rows[model])
    if path is not None:
        plotting.save_figure(fig, path)
    return fig


def _panel(ax: Any, model: str, runtimes: dict, rows: list) -> None:
    """One model's bars and reference lines on `ax`, on a linear scale (ratios read off
    it); a reader's ceiling beyond every bar and model ceiling is named, not drawn."""
    ys = list(range(len(rows)))
    rates = [rate for _, _, rate, _ in rows]
    ax.barh(ys, rates, height=0.7, color=[_COLORS.get(m, "tab:gray") for _, m, _, _ in rows])
    ax.set_yticks(ys, [f"{group}: {mode}" for group, mode, _, _ in rows], fontsize=8)
    ax.invert_yaxis()
    spans: dict[str, list[int]] = {}
    for y, (group, *_) in enumerate(rows):
        spans.setdefault(group, []).append(y)
    model_only = {g: runtimes.get(g, {}).get("model_only") for g in spans}
    high = 1.12 * max(rates + [c for *_, c in rows if c] + [m for m in model_only.values() if m])
    ax.set_xlim(0, high)
    for y, rate in zip(ys, rates, strict=True):
        inside = rate > 0.12 * high  # a short bar's label goes after it
        ax.text(
            rate,
            y,
            f" {rate:,.0f} " if inside else f" {rate:,.0f}",
            va="center",
            ha="right" if inside else "left",
            color="white" if inside else "black",
            fontsize=7,
        )
    for y, (*_, ceiling) in enumerate(rows):
        if ceiling:
            ax.vlines(ceiling, y - 0.45, y + 0.45, colors="black", linestyles="--", lw=1.2)
    if any(c for *_, c in rows):
        ax.plot([], [], "k--", lw=1.2, label="combined_ceiling (per bar)")
    for group, group_ys in spans.items():
        if group_ys[0]:
            ax.axhline(group_ys[0] - 0.5, color="lightgray", lw=0.8)
        if model_only[group]:
            top, bottom = group_ys[0] - 0.5, group_ys[-1] + 0.5
            ax.vlines(model_only[group], top, bottom, colors="tab:red", lw=1.5)
    if any(model_only.values()):
        ax.plot([], [], color="tab:red", lw=1.5, label="model_only (per runtime)")
    for name, style in (("decode_only", "--"), ("decode_only_preresized", ":")):
        value = runtimes["tensorflow"].get(name)
        if value and value <= high:
            ax.axvline(value, color="dimgray", ls=style, lw=1.2, label=f"{name} {value:,.0f}")
        elif value:  # far right of everything else: drawing it would squash the bars
            ax.plot([], [], color="dimgray", ls=style, label=f"{name} {value:,.0f} (off scale)")
    ax.set_title(model, fontsize=10, loc="left")
    ax.set_xlabel("images/s", fontsize=8)
    ax.tick_params(axis="x", labelsize=8)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)


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
    integer("repeats", 3, "Timed repetitions per contender (median reported).", lower_bound=1)
    string("workdir", None, "Corpus/shards/models cache (default: a temp dir).")
    string("json", "bench.json", "Where to write the figures.")
    string("chart", None, "Also draw images/s per mode and runtime to this PNG (tfclassify[plot]).")
    string("from_json", None, "Run nothing: print (and --chart) the figures of an earlier --json.")
    boolean("quiet", False, "No progress bars on stderr (each run's line stays).")
    boolean("onednn", None, cli.ONEDNN_HELP)
    return fv


def _folder_of(flag: str, path: str) -> str:
    """`path` made absolute, once its folder is known to exist: checked before a run of
    minutes, not after it."""
    path = os.path.abspath(path)
    if not os.path.isdir(os.path.dirname(path)):
        raise OutputError(f"--{flag}: no folder {os.path.dirname(path)!r} to write {path!r} in")
    return path


def main(argv: list[str] | None = None) -> int:
    """`python -m tfclassify.bench`; returns the exit status (2 for user errors)."""

    def body(f: Any) -> None:
        if f.chart:
            plotting.require_matplotlib()
            chart_path = _folder_of("chart", f.chart)
        if f.from_json:
            figures = load_json(f.from_json)
            print(report(figures))
        else:
            figures = _run(f)
        if f.chart:
            chart(figures, chart_path)
            print(f"chart written to {chart_path}")

    return cli.run("tfclassify.bench", __doc__, _flags(), argv, body)


def _run(f: Any) -> dict[str, Any]:
    """The benchmark as the flags `f` ask; its figures, printed and written to --json."""
    for m in f.models:
        if m not in MODELS:
            raise OptionsError(f"unknown model {m!r}; choose from {list(MODELS)}")
    json_path = _folder_of("json", f.json)
    print(f"tfclassify.bench: figures go to {json_path}", file=sys.stderr, flush=True)
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
        quiet=f.quiet,
    )
    try:
        figures = run(cfg, out=sys.stdout)
    finally:
        if not f.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    write_json(figures, json_path)
    return figures


if __name__ == "__main__":
    sys.exit(main())
