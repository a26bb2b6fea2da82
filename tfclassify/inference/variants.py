"""`quantize`: a float model's LiteRT and OpenVINO variants, measured here, one selected.

Which runtime and precision run a model fastest depends on the CPU (AVX2 only, AVX-512
VNNI, AMX) and on the model, and quantizing can cost accuracy: so every variant is
measured, never assumed. One run:

1. draws `representative_samples` images from the training split through
   `make_dataset`, preprocessed exactly as `infer` preprocesses them for this model,
   to calibrate the int8 variants;
2. writes each variant (`tfclassify.models.quantization`) and `labels.txt` into the
   output dir;
3. runs the float model and each variant end to end with `infer` (pipelined, the same
   shards of the evaluation split, one after another in this process): images/s,
   top-1 agreement with the float model, top-1 accuracy;
4. with `select='auto'`, picks the fastest variant whose top-1 accuracy is within
   `max_accuracy_drop` of the float model's (else the float model), says why each
   other one lost, and writes `report.json`, whose "selected" entry
   `Predictor.load(output_dir)` and `infer --model output_dir` follow.

Usage:
  report = quantize("model/", "shards/", QuantizeOptions(output_dir="q/"))
  print(report)                       # the table; report.selected, report.path
  infer("q/", "shards/")              # runs the selected variant
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from tfclassify.core import fileio, metadata
from tfclassify.core.cpus import cpu_flags
from tfclassify.core.errors import InputError, OutputError
from tfclassify.core.options import InferOptions, QuantizeOptions
from tfclassify.core.progress import Progress
from tfclassify.inference import modes
from tfclassify.inference.predictions import InferResult
from tfclassify.models import quantization, runtime
from tfclassify.models.predictor import LABELS_FILE, QUANTIZE_REPORT, Predictor

__all__ = ["Contender", "QuantizeReport", "quantize", "select_fastest"]

FLOAT = "float"  # the float model's row in the report
# A run's contender: (model path, dataset, options) -> its InferResult.
Measure = Callable[[str, Any, InferOptions], InferResult]


@dataclasses.dataclass
class Contender:
    """The float model or one variant, as measured.

    Attributes:
      name: `float` or the variant's name.
      runtime / precision: what ran it and what it computed in (`InferResult`'s).
      path: the model file (a SavedModel dir for the float model).
      size_bytes: its size on disk (an IR: .xml and .bin).
      count / seconds / images_per_sec: images run end to end, in how long.
      top1_accuracy: on the labelled evaluation split; None without labels.
      agreement: share of images whose top-1 class is the float model's.
      verdict: `selected`, or why it lost; empty when nothing was selected.
      run_precision: the OpenVINO precision it was run at (None: the runtime's own).
    """

    name: str
    runtime: str
    precision: str
    path: str
    size_bytes: int
    count: int
    seconds: float
    images_per_sec: float
    top1_accuracy: float | None
    agreement: float | None
    verdict: str = ""
    run_precision: str | None = None

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        return {k: None if _nan(v) else v for k, v in d.items()}


@dataclasses.dataclass
class QuantizeReport:
    """What `quantize` wrote and measured (`report.json` holds the same).

    Attributes:
      output_dir / path: the output dir and its report.json.
      model / data / split: the float model, the dataset and the evaluation split.
      representative_split / representative_samples: where the calibration images
        came from, and how many were used.
      image_size / batch_size: what every contender ran at.
      max_accuracy_drop / select: the selection rule.
      float_model: the float model's row; variants: one row per variant written.
      unavailable: variant -> why it cannot be written or run here.
      selected: the chosen contender's name (`float` or a variant); None with
        select `none`.
      cpu: the host's model name and the CPU flags that decide the winner.
      openvino_capabilities: what OpenVINO's CPU plugin computes in here (None
        without OpenVINO).
    """

    output_dir: str
    path: str
    model: str
    data: str
    split: str
    representative_split: str
    representative_samples: int
    image_size: tuple[int, int]
    batch_size: int
    max_accuracy_drop: float
    select: str
    float_model: Contender
    variants: list[Contender]
    unavailable: dict[str, str]
    selected: str | None
    cpu: dict[str, Any]
    openvino_capabilities: list[str] | None

    @property
    def contenders(self) -> list[Contender]:
        return [self.float_model, *self.variants]

    @property
    def selected_contender(self) -> Contender | None:
        return next((c for c in self.contenders if c.name == self.selected), None)

    def to_json(self) -> dict[str, Any]:
        chosen = self.selected_contender
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d.update(
            image_size=list(self.image_size),
            float_model=self.float_model.to_json(),
            variants=[v.to_json() for v in self.variants],
            # What Predictor.load(output_dir) runs: a path relative to the output dir
            # (the float model's is absolute) and the OpenVINO precision to run it at.
            selected=None
            if chosen is None
            else {
                "name": chosen.name,
                "path": chosen.path
                if chosen.name == FLOAT
                else os.path.relpath(chosen.path, self.output_dir),
                "precision": chosen.run_precision,
            },
        )
        return d

    def table(self) -> str:
        """One line per contender: variant, runtime, precision, size, images/s,
        agreement, accuracy, verdict."""
        header = ("variant", "runtime", "precision", "size", "images/s", "agree", "top-1")
        rows = [(*header, "verdict")]
        for c in self.contenders:
            rows.append(
                (
                    c.name,
                    c.runtime,
                    c.precision,
                    _megabytes(c.size_bytes),
                    "n/a" if not math.isfinite(c.images_per_sec) else f"{c.images_per_sec:.1f}",
                    _fraction(c.agreement),
                    _fraction(c.top1_accuracy),
                    c.verdict,
                )
            )
        widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
        return "\n".join(
            "  ".join(cell.ljust(w) for cell, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1]
            for r in rows
        ).rstrip()

    def __str__(self) -> str:
        lines = [
            f"{self.model} on {self.data} [{self.split}], {self.float_model.count} images, "
            f"batch {self.batch_size}, {self.image_size[0]}x{self.image_size[1]}; "
            f"{self.representative_samples} representative images [{self.representative_split}]",
            self.table(),
        ]
        lines += [f"unavailable: {name}: {why}" for name, why in self.unavailable.items()]
        flags = ", ".join(self.cpu["flags"]) or "none of " + ", ".join(self.cpu["checked"])
        lines.append(f"cpu: {self.cpu['model_name'] or 'unknown'} ({flags})")
        chosen = self.selected_contender
        if chosen is not None:
            lines.append(f"selected: {chosen.name} ({chosen.path})")
        lines.append(f"report -> {self.path}")
        return "\n".join(lines)


def _nan(v: Any) -> bool:
    """No figure (a run timed at 0 s): null in report.json, which stays strict JSON."""
    return isinstance(v, float) and not math.isfinite(v)


def _megabytes(n: int) -> str:
    return f"{n / 2**20:.2f} MiB"


def _fraction(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4f}"


# ---------------------------------------------------------------- selection


def _drop(base: Contender, c: Contender) -> tuple[float, str]:
    """How much worse than the float model `c` is: its top-1 accuracy drop, or without
    labels its disagreement with the float model; and what that figure is."""
    if base.top1_accuracy is not None and c.top1_accuracy is not None:
        return base.top1_accuracy - c.top1_accuracy, "accuracy drop"
    return 1.0 - (c.agreement if c.agreement is not None else 0.0), "disagreement (no labels)"


def _speed(c: Contender) -> float:
    return c.images_per_sec if math.isfinite(c.images_per_sec) else 0.0


def select_fastest(base: Contender, variants: list[Contender], max_drop: float) -> Contender:
    """The fastest of the float model and the variants within the accuracy budget;
    sets every contender's verdict.

    A tie goes to the float model, then to the variant listed first.
    """
    within = []
    for v in variants:
        drop, what = _drop(base, v)
        if drop > max_drop + 1e-12:
            v.verdict = f"{what} {drop:.4f} over budget {max_drop:g}"
        else:
            within.append(v)
    best = base
    for c in within:
        if _speed(c) > _speed(best):
            best = c
    for c in [base, *within]:
        if c is best:
            c.verdict = "selected"
        else:
            c.verdict = f"slower than {best.name} ({_speed(c):.1f} vs {_speed(best):.1f} images/s)"
    return best


# ---------------------------------------------------------------- the run


def _check_output(options: QuantizeOptions) -> None:
    """Refuses an output dir that is not empty and not ours, or ours without
    `overwrite`; with `overwrite`, removes what an earlier run wrote there."""
    out = options.output_dir
    if not os.path.exists(out):
        return
    if not os.path.isdir(out):
        raise OutputError(f"output_dir {out} exists and is not a directory")
    ours = {QUANTIZE_REPORT, LABELS_FILE}
    for v in quantization.VARIANTS.values():
        ours.update(v.files)
    names = [n for n in os.listdir(out) if not n.startswith(fileio.TMP_PREFIX)]
    present = [n for n in names if n in ours]
    if names and QUANTIZE_REPORT not in present and len(present) < len(names):
        raise OutputError(
            f"output_dir {out} is not empty and holds no tfclassify.quantize output; "
            "choose a new or empty folder"
        )
    if present and not options.overwrite:
        raise OutputError(
            f"{out} already holds {sorted(present)}; pass overwrite=True",
            settings={"overwrite": True},
        )
    for n in present:
        if os.path.isfile(os.path.join(out, n)):
            os.remove(os.path.join(out, n))


def _size_bytes(path: str) -> int:
    if os.path.isdir(path):
        walk = os.walk(path)
        return sum(os.path.getsize(os.path.join(root, f)) for root, _, files in walk for f in files)
    extra = path[: -len(".xml")] + ".bin" if path.endswith(".xml") else None
    return os.path.getsize(path) + (os.path.getsize(extra) if extra else 0)


def _representative(
    data: str,
    split: str,
    count: int,
    predictor: Predictor,
    infer_options: InferOptions,
    quiet: bool,
) -> list[np.ndarray]:
    """The first `count` images of `split`, [1, H, W, C] float32 each, read and
    preprocessed as `infer` reads them for `predictor`."""
    from tfclassify.reading.dataset import make_dataset

    one_at_a_time = dataclasses.replace(infer_options, batch_size=1)
    read = modes.read_options_for(predictor, one_at_a_time, split)
    ds = make_dataset(data, read).take(count)
    samples = []
    with Progress("calibration images", count, quiet=quiet) as bar:
        for b in modes._checked(iter(ds), data):
            samples.append(np.asarray(b["image"], np.float32))
            bar.update()
    return samples


def _contender(
    name: str, result: InferResult, reference: InferResult | None, run_precision: str | None
) -> Contender:
    top1 = result.topk_ids[:, 0]
    agreement = 1.0
    if reference is not None:
        ref = dict(zip(reference.keys, reference.topk_ids[:, 0].tolist(), strict=True))
        same = [ref[k] == t for k, t in zip(result.keys, top1.tolist(), strict=True) if k in ref]
        agreement = float(np.mean(same)) if same else None
    return Contender(
        name=name,
        runtime=result.runtime,
        precision=result.precision,
        path=result.model,
        size_bytes=_size_bytes(result.model),
        count=result.count,
        seconds=result.seconds,
        images_per_sec=result.images_per_sec,
        top1_accuracy=result.top1_accuracy,
        agreement=agreement,
        run_precision=run_precision,
    )


def _openvino_capabilities(unavailable: dict[str, str]) -> list[str] | None:
    if "openvino-f32" in unavailable:
        return None
    return list(quantization.openvino_capabilities())


def _write_variants(
    model: str,
    data: str,
    rep_split: str,
    names: list[str],
    options: QuantizeOptions,
    base: InferOptions,
) -> tuple[dict[str, str], tuple[int, int], int]:
    """Writes labels.txt and each variant into the output dir: (variant -> path, image
    size, representative images used). The float model loaded here is released on
    return: what is measured is the model `infer` loads."""
    predictor = Predictor.load(
        model, signature=options.signature, device="cpu", freeze=False, runtime="tensorflow"
    )
    calibrated = any(quantization.VARIANTS[n].calibrated for n in names)
    # Without an int8 variant, one image: enough to tell logits from probabilities.
    count = options.representative_samples if calibrated else 1
    samples = _representative(
        data, rep_split, count, predictor, base, quiet=options.quiet or not calibrated
    )
    if not samples:
        raise InputError(f"no representative images: none of split {rep_split!r} could be read")
    predictor.predict(samples[0])  # tells logits from probabilities, if the model does not
    graph = quantization.FloatGraph(predictor, options.image_size)
    out = options.output_dir
    os.makedirs(out, exist_ok=True)
    if predictor.labels is not None:
        fileio.atomic_write_text(
            os.path.join(out, LABELS_FILE), "".join(f"{t}\n" for t in predictor.labels)
        )
    paths: dict[str, str] = {}
    with Progress("write variants", len(names), quiet=options.quiet, unit="variant") as bar:
        for name in names:
            file = quantization.VARIANTS[name].file
            # openvino-f32 and openvino-bf16 run the same IR.
            written = next((p for p in paths.values() if os.path.basename(p) == file), None)
            paths[name] = written or quantization.write_variant(
                name, graph, out, representative=lambda: iter(samples)
            )
            bar.update()
    return paths, graph.image_size, len(samples)


def quantize(
    model: str,
    data: str,
    options: QuantizeOptions,
    *,
    measure: Measure | None = None,
) -> QuantizeReport:
    """Writes a float model's variants, measures each end to end, and selects one.

    Args:
      model: the float model: a SavedModel dir, a `.keras` file or a tfclassify model
        dir (from `train`).
      data: a converted dataset directory with a training split (calibration images)
        and a labelled evaluation split.
      options: variants, calibration, selection, output; see `QuantizeOptions`.
      measure: runs one contender, `(model path, data, InferOptions) -> InferResult`;
        `infer` by default, with a bar per contender (`measure NAME`; none with
        `options.quiet`). Tests pass one that fakes the timing.

    Returns:
      A `QuantizeReport`; `report.json` is written in `options.output_dir`.

    Raises:
      OptionsError: an unknown variant, or `openvino-bf16` on a CPU without bf16; a
        model that accepts any image size without `image_size`.
      MissingDependencyError: a requested variant's runtime is not installed.
      InputError: no such model or dataset; a representative split with no images;
        a model that is not a float TensorFlow model, or that a converter refuses.
      OutputError: an output dir that holds other files, or a previous output
        without `overwrite`.
    """
    if not isinstance(data, (str, os.PathLike)):
        raise InputError(f"data must be a converted dataset directory, got {type(data)}")
    data = os.fspath(data)
    info = metadata.load(data)
    split = options.split or modes._default_split(info)
    info.split(split)  # an error listing the splits there are
    rep_split = options.representative_split
    if info.split(rep_split).num_examples == 0:
        raise InputError(
            f"no representative images: split {rep_split!r} of {data} has 0 images "
            "(pass representative_split to draw them from another split)"
        )
    availability = quantization.available_variants()
    unavailable = {n: why for n, why in availability.items() if why is not None}
    if options.variants is None:
        names = [n for n, why in availability.items() if why is None]
        if not names:  # no runtime installed: fp32's error says what to install
            quantization.check_variant("fp32")
    else:
        names = [quantization.check_variant(n).name for n in options.variants]
    _check_output(options)

    base = InferOptions(
        mode="pipelined",
        batch_size=options.batch_size,
        top_k=1,
        split=split,
        image_size=options.image_size,
        threads=options.threads,
        signature=options.signature,
        max_images=options.max_images,
        keep_probabilities=False,
        read=options.read,
    )
    runtime.apply_threads(options.threads)
    paths, image_size, num_samples = _write_variants(model, data, rep_split, names, options, base)

    def run(name: str, path: str, infer_options: InferOptions) -> InferResult:
        if measure is not None:
            return measure(path, data, infer_options)
        with Progress(f"measure {name}", quiet=options.quiet) as bar:
            return modes.infer(path, data, infer_options, progress=bar)

    reference = run(FLOAT, model, base)
    float_model = _contender(FLOAT, reference, None, None)
    float_model.path = os.path.abspath(float_model.path)
    variants = []
    for name in names:
        precision = quantization.VARIANTS[name].precision
        result = run(name, paths[name], dataclasses.replace(base, precision=precision))
        variants.append(_contender(name, result, reference, precision))

    selected = None
    if options.select == "auto":
        selected = select_fastest(float_model, variants, options.max_accuracy_drop).name
    out = options.output_dir
    report = QuantizeReport(
        output_dir=out,
        path=os.path.join(out, QUANTIZE_REPORT),
        model=model,
        data=data,
        split=split,
        representative_split=rep_split,
        representative_samples=num_samples,
        image_size=image_size,
        batch_size=options.batch_size,
        max_accuracy_drop=options.max_accuracy_drop,
        select=options.select,
        float_model=float_model,
        variants=variants,
        unavailable=unavailable,
        selected=selected,
        cpu=cpu_flags(),
        openvino_capabilities=_openvino_capabilities(unavailable),
    )
    fileio.atomic_write_text(report.path, json.dumps(report.to_json(), indent=2) + "\n")
    return report
