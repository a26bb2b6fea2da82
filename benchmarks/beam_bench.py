"""Beam conversion and inference against their local and stock counterparts, in one run.

  conversion: ConvertToTFRecords on the local runner, in-process and with
      --direct_num_workers=2 --direct_running_mode=multi_processing
      vs  tfclassify.convert, on the same JPEGs with the same options
      (each run into a fresh folder; the Beam output is checked to be the local
      converter's, byte for byte)
  inference: PredictShards (one element per shard; tf.data + Predictor inside)
      vs  RunInference(TFModelHandlerTensor) over a per-image decode `Map`   (target >= 2.5)

and, for reference, the plain tf.data loop without Beam (`tfclassify.infer`,
pipelined), which PredictShards should stay near, and the ceilings of
`tfclassify.bench`: the reader alone (decode-only), the model alone on one random
batch (model-only) and both sharing the cores, 1 / (1/decode + 1/model). A run near
model-only is bound by the model: there the stock pipeline's per-image decode costs
least, and the ratio to it shrinks on a machine whose cores are busy elsewhere.

Same images (photo-like 640x480 JPEGs, converted into shards for PredictShards; the
JPEG files themselves for the stock pipeline, which decodes each in a `beam.Map`),
same model (MobileNetV2, random init: its SavedModel for tfclassify, run by TF unless
--runtime says otherwise, or with --variant the same model as that `tfclassify.quantize`
variant, e.g. openvino-f32, as it would be deployed; its .keras file for the stock
handler), same batch
size, same image size, on the local runner
(`tfclassify.beam.LOCAL_RUNNER` unless --beam_args names another).
Each contender is timed from nothing to predictions (pipeline construction, model
load, every image), after a warm-up pass, --repeats times round-robin, median
reported (tfclassify.bench.round_robin). Each figure is printed as soon as it is
known (each run's rate on stderr), then all go to --json; predict_shards_vs_stock's
ceiling is ceiling_vs_stock (the combined ceiling over the stock rate): a target
above it is reported out of reach on this host.

Beam's TF handler imports `tensorflow_hub` (which needs `tf_keras`); neither is a
tfclassify dependency. Without them the stock contender is skipped with that said;
install them in the benchmark's environment only:

  python -m venv --system-site-packages /tmp/benchenv
  /tmp/benchenv/bin/pip install --no-deps tensorflow-hub "tf-keras==$(python -c \
      'import tensorflow as tf; print(tf.__version__.rsplit(".", 1)[0])').*"
  /tmp/benchenv/bin/python benchmarks/beam_bench.py

  python benchmarks/beam_bench.py [--num_images 1000] [--workdir DIR] [--json out.json]
  python benchmarks/beam_bench.py --num_images 16 --image_size 64 --repeats 1   # smoke
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import shutil
import sys
import tempfile
from collections.abc import Callable
from typing import Any

from absl import app, flags

flags.DEFINE_integer("num_images", 1000, "Photo-like JPEGs to generate (~50 KB each).")
flags.DEFINE_integer("image_size", 224, "The model's input size (square).")
flags.DEFINE_integer("batch_size", 32, "Images per model call, for every contender.")
flags.DEFINE_float("shard_size_mb", 20.0, "Shard size of the converted corpus (~400 photos).")
flags.DEFINE_integer("repeats", 3, "Timed repetitions per contender (median reported).")
flags.DEFINE_string(
    "workdir", None, "Keep the corpus, shards and model here (default: a temp dir)."
)
flags.DEFINE_string("beam_args", "", "Pipeline options for both Beam contenders.")
flags.DEFINE_string(
    "runtime", "auto", "What runs the model for tfclassify's contenders (infer's --runtime)."
)
flags.DEFINE_string(
    "variant",
    None,
    "A `tfclassify.quantize` variant of the model (openvino-f32, fp32, ...) that "
    "tfclassify's contenders run instead of the SavedModel; written once per run.",
)
flags.DEFINE_string("json", "beam_bench.json", "Where to write the figures.")
flags.DEFINE_list("parts", ["convert", "infer"], "Which halves to run: convert, infer.")
FLAGS = flags.FLAGS

TARGETS = {"predict_shards_vs_stock": 2.5}
# PredictShards cannot beat the combined ceiling: over the stock pipeline as measured,
# that bounds the ratio on this host.
CEILINGS = {"predict_shards_vs_stock": "ceiling_vs_stock", "predict_shards_vs_ceiling": 1.0}
STOCK_MISSING = (
    "stock RunInference: skipped: Beam's TF handler "
    "(apache_beam.ml.inference.tensorflow_inference) needs {missing}, which is not "
    "installed. Install it in the benchmark's environment only (not a tfclassify "
    "dependency): python -m venv --system-site-packages /tmp/benchenv && "
    "/tmp/benchenv/bin/pip install --no-deps tensorflow-hub 'tf-keras=={tf}.*', then run "
    "this script with /tmp/benchenv/bin/python"
)


def _prepare(workdir: str) -> tuple[str, list[str], str, str]:
    """(JPEG folder, its files, dataset dir, model dir), made once per workdir."""
    import tfclassify
    from tfclassify import testing
    from tfclassify.models import architectures

    corpus = os.path.join(workdir, f"corpus{FLAGS.num_images}")
    data = os.path.join(workdir, f"shards{FLAGS.num_images}_{FLAGS.shard_size_mb:g}mb")
    model = os.path.join(workdir, f"mobilenet_v2_{FLAGS.image_size}")
    if not os.path.isdir(corpus):
        testing.make_photo_corpus(corpus + ".tmp", num_images=FLAGS.num_images)
        os.replace(corpus + ".tmp", corpus)
    files = sorted(os.path.join(d, f) for d, _, fs in os.walk(corpus) for f in fs)
    if not os.path.isdir(data):
        options = tfclassify.ConvertOptions(
            input_dir=corpus, output_dir=data, shard_size_mb=FLAGS.shard_size_mb, quiet=True
        )
        tfclassify.convert(options)
    labels = tfclassify.load_dataset_info(data).labels
    if not os.path.isdir(model):
        os.makedirs(model + ".tmp", exist_ok=True)
        size = (FLAGS.image_size, FLAGS.image_size)
        net = architectures.build_model("mobilenet_v2", size, len(labels))
        architectures.save_model(net, labels, model + ".tmp")
        os.replace(model + ".tmp", model)
    return corpus, files, data, model


def _variant(model: str, data: str, workdir: str, batch: int) -> tuple[str, str | None]:
    """`--variant` of `model`, written by `tfclassify.quantize`: (path, precision)."""
    import tfclassify

    report = tfclassify.quantize(
        model,
        data,
        tfclassify.QuantizeOptions(
            output_dir=os.path.join(workdir, f"variant_{FLAGS.variant}"),
            variants=(FLAGS.variant,),
            select="none",
            batch_size=batch,
            max_images=batch,  # timed here; quantize only checks it runs
            overwrite=True,
            quiet=True,
        ),
    )
    return report.variants[0].path, report.variants[0].run_precision


def _stock_handler() -> tuple[type | None, str | None]:
    """Beam's TFModelHandlerTensor, or (None, what is missing)."""
    try:
        from apache_beam.ml.inference.tensorflow_inference import TFModelHandlerTensor
    except ModuleNotFoundError as e:
        return None, e.name
    return TFModelHandlerTensor, None


def _counted(p, pcoll) -> int:
    """Runs pipeline `p`; how many elements `pcoll` had (through a metric: the steps run
    on copies of their functions, so a list they append to stays empty here)."""
    import apache_beam as beam
    from apache_beam.metrics.metric import MetricsFilter

    counter = beam.metrics.Metrics.counter("beam_bench", "elements")
    _ = pcoll | beam.combiners.Count.Globally() | beam.Map(counter.inc)
    result = p.run()
    result.wait_until_finish()
    found = result.metrics().query(MetricsFilter().with_name("elements"))["counters"]
    return sum(c.committed for c in found)


MULTI_PROCESS = ["--direct_num_workers=2", "--direct_running_mode=multi_processing"]


def _files_below(directory: str) -> list[str]:
    """Every file below `directory` (the shard indexes' folder too), sorted, relative."""
    return sorted(
        os.path.relpath(os.path.join(parent, name), directory)
        for parent, _, names in os.walk(directory)
        for name in names
    )


def _conversion_contenders(
    corpus: str, workdir: str, beam_args: list[str]
) -> tuple[dict[str, Callable[[], tuple[int, float]]], dict[str, bool]]:
    """The local converter and ConvertToTFRecords (in-process, multi-process), each
    run into a fresh folder, removed after; and {Beam contender: whether its first
    output was the local converter's, byte for byte}, filled as they run."""
    import filecmp

    import tfclassify
    from tfclassify import bench
    from tfclassify.beam import pipeline_options, run_conversion

    options = tfclassify.ConvertOptions(
        input_dir=corpus, output_dir=workdir, shard_size_mb=FLAGS.shard_size_mb, quiet=True
    )
    reference = os.path.join(workdir, "convert_reference")
    shutil.rmtree(reference, ignore_errors=True)
    identical: dict[str, bool] = {}

    def contender(name: str, run: Callable[[Any], Any]) -> Callable[[], tuple[int, float]]:
        def once() -> int:
            out = os.path.join(workdir, name)
            shutil.rmtree(out, ignore_errors=True)
            accepted = run(dataclasses.replace(options, output_dir=out)).accepted
            if not os.path.exists(reference):  # the local converter runs first
                shutil.copytree(out, reference)
            elif name not in identical and name != "convert_local":
                files = _files_below(reference)
                _, differ, errors = filecmp.cmpfiles(reference, out, files, shallow=False)
                identical[name] = _files_below(out) == files and not differ + errors
            shutil.rmtree(out, ignore_errors=True)
            return accepted

        return bench.timed(once)

    def on_beam(args: list[str]) -> Callable[[Any], Any]:
        return lambda o: run_conversion(o, pipeline_options(args))

    contenders = {
        "convert_local": contender("convert_local", tfclassify.convert),
        "convert_beam": contender("convert_beam", on_beam(beam_args)),
        "convert_beam_multi_process": contender(
            "convert_beam_multi_process", on_beam([*beam_args, *MULTI_PROCESS])
        ),
    }
    return contenders, identical


def main(argv: list[str]) -> None:
    del argv
    from tfclassify.models import runtime

    # Before TF's import, for every contender alike: oneDNN on, as tfclassify's
    # commands run TF (benchmarks/NOTES.md), and TF's INFO lines off.
    runtime.quiet_tensorflow_info()
    runtime.prefer_onednn()
    import apache_beam as beam
    import tensorflow as tf
    from apache_beam.ml.inference.base import RunInference

    import tfclassify
    from tfclassify import bench
    from tfclassify.beam import PredictShards, dataset_shards, pipeline_options
    from tfclassify.core.cpus import cpu_flags
    from tfclassify.inference import modes

    scratch = None if FLAGS.workdir else tempfile.mkdtemp(prefix="beam_bench_")
    workdir = FLAGS.workdir or scratch
    corpus, files, data, model = _prepare(workdir)
    shards, info, split = dataset_shards(data, "train")
    n, size, batch = len(files), (FLAGS.image_size, FLAGS.image_size), FLAGS.batch_size
    beam_args = shlex.split(FLAGS.beam_args)
    unknown = set(FLAGS.parts) - {"convert", "infer"}
    if unknown:
        raise app.UsageError(f"--parts: unknown {sorted(unknown)}; choose from convert, infer")
    contenders: dict[str, Callable[[], tuple[int, float]]] = {}
    identical: dict[str, bool] = {}
    if "convert" in FLAGS.parts:
        contenders, identical = _conversion_contenders(corpus, workdir, beam_args)
    ours, precision = model, None
    if FLAGS.variant:  # written before anything is timed, as a user would deploy it
        ours, precision = _variant(model, data, workdir, batch)
    options = tfclassify.InferOptions(
        split=split, batch_size=batch, top_k=1, runtime=FLAGS.runtime, precision=precision
    )

    def predict_shards() -> int:
        p = beam.Pipeline(options=pipeline_options(beam_args))
        predict = PredictShards(ours, options, labels=info.labels, split=split, data=data)
        return _counted(p, (p | beam.Create(shards) | predict).rows)

    def tf_data() -> int:
        return tfclassify.infer(ours, data, options).count

    prepared = None
    if "infer" in FLAGS.parts:
        # The ceilings (tfclassify.bench's): the reader alone, the model alone on one
        # random batch, and both sharing the cores, 1 / (1/decode + 1/model).
        prepared = modes.prepare(ours, options, info.labels)
        contenders["decode_only"] = bench._decode_only(data, prepared.read_options(split), n)
        contenders["model_only"] = bench._model_only(prepared.predictor, FLAGS.image_size, n, batch)
        contenders["predict_shards"] = bench.timed(predict_shards)
        contenders["tf_data"] = bench.timed(tf_data)
        handler, missing = _stock_handler()
        if handler is None:
            print(STOCK_MISSING.format(missing=missing, tf=tf.__version__.rsplit(".", 1)[0]))
        else:
            keras_file = os.path.join(model, "model.keras")

            def decode(path: str) -> tf.Tensor:
                # What a stock pipeline does per element: read, decode, resize, scale.
                image = tf.io.decode_jpeg(tf.io.read_file(path), channels=3)
                return tf.image.resize(image, size) / 255.0

            def stock() -> int:
                p = beam.Pipeline(options=pipeline_options(beam_args))
                mh = handler(keras_file, min_batch_size=batch, max_batch_size=batch)
                out = p | beam.Create(files) | beam.Map(decode) | RunInference(mh)
                return _counted(p, out)

            contenders["stock_run_inference"] = bench.timed(stock)

    # Each figure is printed as soon as it is known: a contender's after its last run.
    results = bench.Report(sys.stdout, TARGETS, CEILINGS)
    results.add(
        {
            "num_images": n,
            "shards": len(shards),
            "image_size": FLAGS.image_size,
            "batch_size": batch,
            "beam_args": beam_args,
            "runtime": prepared.predictor.runtime if prepared else None,
            "variant": FLAGS.variant,
            "cores": os.cpu_count(),
            "cpu": cpu_flags(),
        }
    )

    def done(name: str, rate: float) -> None:
        results.add({f"{name}_images_per_s": round(rate, 1)})

    rates = bench.round_robin(contenders, FLAGS.repeats, bench.Runs().progress, done)
    derived: dict[str, Any] = {}
    if "convert" in FLAGS.parts:
        for name in ("convert_beam", "convert_beam_multi_process"):
            derived[f"{name}_vs_local"] = round(rates[name] / rates["convert_local"], 3)
            derived[f"{name}_identical_to_local"] = identical.get(name, False)
    if prepared is not None:
        ceiling = 1 / (1 / rates["decode_only"] + 1 / rates["model_only"])
        derived["ceiling_images_per_s"] = round(ceiling, 1)
        derived["predict_shards_vs_tf_data"] = round(rates["predict_shards"] / rates["tf_data"], 3)
        derived["predict_shards_vs_ceiling"] = round(rates["predict_shards"] / ceiling, 3)
        if "stock_run_inference" in rates:
            stock = rates["stock_run_inference"]
            derived["predict_shards_vs_stock"] = round(rates["predict_shards"] / stock, 3)
            derived["ceiling_vs_stock"] = round(ceiling / stock, 3)
    results.add(derived)
    bench.write_json(results.figures, FLAGS.json)
    if scratch:
        shutil.rmtree(scratch, ignore_errors=True)
    sys.exit(0)


if __name__ == "__main__":
    app.run(main)
