"""The CPUs this process may use (the default for every worker and thread count), and
the instruction sets that decide which model runtime and precision run fastest on them."""

from __future__ import annotations

import os


def available_cpus() -> int:
    """CPUs this process may run on (affinity-aware, like TF's own default)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# Instruction sets that decide which runtime and precision win on a CPU: AVX2/FMA for
# float kernels, VNNI for int8 dot products, BF16/AMX for bfloat16 and int8 matrices.
RELEVANT_CPU_FLAGS = (
    "avx2",
    "fma",
    "avx512f",
    "avx512bw",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
)


def cpu_flags(path: str = "/proc/cpuinfo") -> dict[str, object]:
    """The CPU's model name and which of `RELEVANT_CPU_FLAGS` it has (Linux's cpuinfo).

    Returns:
      {"model_name": str or None, "flags": the relevant flags present, "checked":
      `RELEVANT_CPU_FLAGS`}; without a readable cpuinfo, no name and no flags.
    """
    name, flags = None, set()
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and name is None:
                    name = value.strip()
                elif key == "flags" and not flags:
                    flags = set(value.split())
                if name is not None and flags:
                    break
    except OSError:
        pass
    return {
        "model_name": name,
        "flags": [f for f in RELEVANT_CPU_FLAGS if f in flags],
        "checked": list(RELEVANT_CPU_FLAGS),
    }
