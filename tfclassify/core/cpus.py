"""How many CPUs this process may use: the default for every worker and thread count."""

from __future__ import annotations

import os


def available_cpus() -> int:
    """CPUs this process may run on (affinity-aware, like TF's own default)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
