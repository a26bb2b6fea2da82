"""Thread budget and device placement.

Settings that need a TF runtime that has not started yet run in a fresh interpreter
(`subprocess`): inside pytest another test may already have initialised TF.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import textwrap

import pytest

from tfclassify.core.errors import OptionsError
from tfclassify.core.options import InferOptions, ThreadOptions, TrainOptions
from tfclassify.models import runtime

_FRESH = textwrap.dedent(
    """
    import json
    from tfclassify.models import runtime
    from tfclassify.core.errors import OptionsError
    from tfclassify.core.options import ThreadOptions

    out = {}
    out["listed_gpu"] = runtime.gpu_available()  # listing devices must not initialise TF
    out["applied"] = runtime.apply_threads(ThreadOptions(intra_op=1, inter_op=2))
    import tensorflow as tf
    float(tf.reduce_sum(tf.ones([4, 4])))  # TF runtime now initialised
    out["after_init"] = runtime.effective_threads()
    runtime.apply_threads(ThreadOptions(intra_op=1, inter_op=2))  # same values: fine
    try:
        runtime.apply_threads(ThreadOptions(intra_op=2))
        out["late_change"] = "no error"
    except OptionsError as e:
        out["late_change"] = str(e)
    try:
        runtime.apply_threads(ThreadOptions(onednn=not out["after_init"]["onednn"]))
        out["late_onednn"] = "no error"
    except OptionsError as e:
        out["late_onednn"] = str(e)
    out["pool"] = tf.data.Dataset.range(3).options().threading.private_threadpool_size
    print("RESULT" + json.dumps(out))
    """
)


def _run_fresh(script: str, **env: str) -> dict:
    """`script` in a new interpreter (TF not imported yet); its RESULT line as JSON."""
    base = {k: v for k, v in os.environ.items() if k != runtime.ONEDNN_ENV}
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env={**base, "TF_CPP_MIN_LOG_LEVEL": "3", **env},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    line = next(s for s in proc.stdout.splitlines() if s.startswith("RESULT"))
    return json.loads(line[len("RESULT") :])


@pytest.fixture(scope="module")
def fresh() -> dict:
    return _run_fresh(_FRESH)


def test_threads_applied_before_init_are_in_effect(fresh):
    for key in ("applied", "after_init"):
        t = fresh[key]
        assert (t["intra_op"], t["inter_op"]) == (1, 2)
        assert (t["intra_op_effective"], t["inter_op_effective"]) == (1, 2)
        assert t["cpus"] >= 1


def test_changing_threads_after_init_raises_options_error(fresh):
    msg = fresh["late_change"]
    assert "already initialised" in msg and "intra_op" in msg and "2" in msg


def test_thread_budget_leaves_each_pipeline_its_own_pool(fresh):
    """A tf.data pool is set one way, `ReadOptions.private_threadpool_size`: the
    process's thread budget neither holds nor attaches one."""
    assert fresh["pool"] is None and "tf_data_threads" not in fresh["applied"]


def test_late_change_in_this_process_raises():
    import tensorflow as tf

    float(tf.reduce_sum(tf.ones([2])))  # make sure the runtime is up
    current = tf.config.threading.get_inter_op_parallelism_threads()
    runtime.apply_threads(ThreadOptions(inter_op=current) if current else ThreadOptions())
    with pytest.raises(OptionsError, match="already initialised"):
        runtime.apply_threads(ThreadOptions(inter_op=current + 1))


def test_effective_threads_reports_default_meaning():
    t = runtime.effective_threads()
    assert t["cpus"] == runtime.available_cpus()
    assert t["intra_op_effective"] == (t["intra_op"] or t["cpus"])
    assert t["inter_op_effective"] == (t["inter_op"] or t["cpus"])


@pytest.mark.parametrize("bad", [0, -1])
def test_thread_options_validate(bad):
    with pytest.raises(OptionsError, match=str(bad)):
        ThreadOptions(intra_op=bad)


_EXTREMES = (1e20, 2**31, -1, 0, 99999999999, True)
_INFER = {"make": InferOptions, "base": {}}
_TRAIN = {"make": TrainOptions, "base": {"data": "d", "output": "o"}}
_THREADS = {"make": ThreadOptions, "base": {}}


@pytest.mark.parametrize(
    "kind, field, bad, good",
    [
        (_THREADS, "intra_op", (*_EXTREMES, 4097), (1, 4096, None)),
        (_THREADS, "inter_op", (*_EXTREMES, 4097), (1, 4096, None)),
        (_INFER, "batch_size", _EXTREMES, (1, 2**31 - 1)),
        (_INFER, "top_k", _EXTREMES, (1, 2**31 - 1)),
        (_INFER, "max_images", (1e20, 2**63, -1, 0, True), (1, 2**63 - 1, None)),
        (_INFER, "image_size", (1e20, 2**31, -1, 0, (16, 2**31)), (1, 2**31 - 1, None)),
        (_TRAIN, "epochs", _EXTREMES, (1, 2**31 - 1)),
        (_TRAIN, "batch_size", _EXTREMES, (1, 2**31 - 1)),
        (_TRAIN, "image_size", (1e20, 2**31, -1, 0), (14, 4096)),
        (_TRAIN, "seed", (1e20, 2**32, -1, True), (0, 2**32 - 1)),
        (_TRAIN, "learning_rate", (1e400, float("nan"), -1, 0, "1"), (1e-9, 10)),
    ],
)
def test_every_numeric_thread_infer_and_train_option_is_bounded(kind, field, bad, good):
    """Extreme values are one line naming the field where the options are made, not
    an overflow deep in TF (intra_op=99999999999 was a ValueError at TF's start)."""
    for value in bad:
        with pytest.raises(OptionsError, match=rf"^{field}( sides)? must be ") as e:
            kind["make"](**kind["base"], **{field: value})
        assert "\n" not in str(e.value) and repr(value) in str(e.value), value
    for value in good:
        kind["make"](**kind["base"], **{field: value})


def test_resolve_device():
    assert runtime.resolve_device("cpu") == "/CPU:0"
    has_gpu = runtime.gpu_available()
    assert runtime.resolve_device("auto") == ("/GPU:0" if has_gpu else "/CPU:0")
    if has_gpu:
        assert runtime.resolve_device("gpu") == "/GPU:0"
    else:
        with pytest.raises(OptionsError, match="no GPU"):
            runtime.resolve_device("gpu")
    with pytest.raises(OptionsError, match="tpu"):
        runtime.resolve_device("tpu")


def test_gpu_only_paths_refuse_or_pass_through_on_cpu():
    import tensorflow as tf

    with pytest.raises(OptionsError, match="GPU"):
        runtime.enable_mixed_precision("/CPU:0")
    ds = tf.data.Dataset.range(2)
    assert runtime.prefetch_to_device(ds, "/CPU:0") is ds


_X86 = platform.machine().lower() in ("x86_64", "amd64")


def test_onednn_switch_after_import_raises_options_error(fresh):
    # The fresh script imported TF (listing GPUs) before applying any ThreadOptions.
    msg = fresh["late_onednn"]
    assert "already imported" in msg and runtime.ONEDNN_ENV in msg


_ONEDNN = textwrap.dedent(
    """
    import json, sys
    from tfclassify.models import runtime
    from tfclassify.core.options import ThreadOptions
    wanted = {"on": True, "off": False, "none": None}[sys.argv[1]]
    runtime.apply_threads(ThreadOptions(onednn=wanted))
    print("RESULT" + json.dumps(runtime.effective_threads()["onednn"]))
    """
)


_ONEDNN_RULE = [
    ("none", {}, True),  # the default: on, since the environment does not decide
    ("off", {}, False),
    ("none", {"TF_ENABLE_ONEDNN_OPTS": "0"}, False),  # the user's environment wins
    ("on", {"TF_ENABLE_ONEDNN_OPTS": "0"}, True),  # ...over the default, not an option
]


@pytest.mark.parametrize("wanted, env, expected", _ONEDNN_RULE)
def test_onednn_switch_before_the_tf_import_follows_option_then_environment(
    monkeypatch, wanted, env, expected
):
    """What is left for TF to read at its import, in this process with TF taken for
    not imported yet (that TF obeys it: the fresh processes below)."""
    import tensorflow as tf

    monkeypatch.delitem(sys.modules, "tensorflow")
    # The threads part and the report need TF itself: this process's, not a new import.
    monkeypatch.setattr(runtime, "_tf", lambda: tf)
    monkeypatch.setattr(runtime, "onednn_enabled", lambda: None)
    monkeypatch.delenv(runtime.ONEDNN_ENV, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    onednn = {"on": True, "off": False, "none": None}[wanted]
    runtime.apply_threads(ThreadOptions(onednn=onednn))
    assert os.environ[runtime.ONEDNN_ENV] == ("1" if expected else "0")
    if onednn is None:  # what Predictor.load does: the same rule
        monkeypatch.delenv(runtime.ONEDNN_ENV, raising=False)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        runtime.prefer_onednn()
        assert os.environ[runtime.ONEDNN_ENV] == ("1" if expected else "0")
    assert "tensorflow" not in sys.modules  # nothing imported it again meanwhile


@pytest.mark.skipif(not _X86, reason="TF's oneDNN switch is checked on x86 builds")
@pytest.mark.parametrize(
    "wanted, env, expected",
    # By default the two cases that show TF obeying each value the switch sets; the
    # rule itself is checked in-process above.
    [
        *_ONEDNN_RULE[:2],
        *(pytest.param(*case, marks=pytest.mark.slow) for case in _ONEDNN_RULE[2:]),
    ],
)
def test_onednn_follows_option_then_environment(wanted, env, expected):
    assert _run_fresh(_ONEDNN.replace("sys.argv[1]", repr(wanted)), **env) is expected


@pytest.mark.slow  # the same switch as apply_threads' default, checked in-process above
@pytest.mark.skipif(not _X86, reason="TF's oneDNN switch is checked on x86 builds")
def test_prefer_onednn_before_the_first_tf_import_turns_it_on():
    script = textwrap.dedent(
        """
        import json
        from tfclassify.models import runtime
        runtime.prefer_onednn()  # what Predictor.load does before loading
        import tensorflow
        print("RESULT" + json.dumps(runtime.onednn_enabled()))
        """
    )
    assert _run_fresh(script) is True


@pytest.mark.parametrize(
    ("machine", "env", "enabled", "hinted"),
    [
        ("x86_64", None, False, True),  # TF's default left it off: say so, once
        ("x86_64", "0", False, False),  # the user turned it off
        ("x86_64", None, True, False),
        ("aarch64", None, False, False),  # TF's oneDNN switch is an x86 matter
    ],
)
def test_onednn_off_after_import_is_hinted_once(monkeypatch, machine, env, enabled, hinted):
    import tensorflow  # noqa: F401  (the hint is about a TF imported before tfclassify)
    from absl import logging

    said = []
    monkeypatch.setattr(logging, "warning", lambda msg, *a: said.append(msg % a))
    monkeypatch.setattr(runtime.platform, "machine", lambda: machine)
    monkeypatch.setattr(runtime, "onednn_enabled", lambda: enabled)
    monkeypatch.setattr(runtime, "_hinted", False)
    if env is None:
        monkeypatch.delenv(runtime.ONEDNN_ENV, raising=False)
    else:
        monkeypatch.setenv(runtime.ONEDNN_ENV, env)
    runtime.apply_threads(ThreadOptions())
    runtime.prefer_onednn()  # what Predictor.load calls
    assert len(said) == (1 if hinted else 0)
    if hinted:
        assert runtime.ONEDNN_ENV + "=1" in said[0]


def test_tensorflow_info_lines_go_off_with_the_onednn_switch(monkeypatch):
    """Set with oneDNN's switch, before TF is imported (TF reads both once, then);
    a level in the user's environment wins."""
    monkeypatch.delenv(runtime.LOG_LEVEL_ENV, raising=False)
    monkeypatch.delenv(runtime.ONEDNN_ENV, raising=False)
    monkeypatch.delitem(sys.modules, "tensorflow")  # as in a fresh process
    runtime.prefer_onednn()
    assert os.environ[runtime.LOG_LEVEL_ENV] == "1"
    monkeypatch.setenv(runtime.LOG_LEVEL_ENV, "0")
    runtime.prefer_onednn()
    assert os.environ[runtime.LOG_LEVEL_ENV] == "0"
