"""Test-only launcher: `python tests/killhook.py FLAGS...` runs the converter's command
line (`python -m tfclassify.convert FLAGS...`) with one function wrapped so that the
process signals itself at a chosen point. No hook lives in the product code.

The point comes from the environment variable TFCLASSIFY_KILL_AT, a JSON object:

  targets  ["module:attr.path", ...]  functions wrapped, sharing one call count
  match    fnmatch pattern; only calls with an argument whose base name (or whose
           `.file`) matches it count (absent: every call)
  nth      the matching call at which to fire (1-based)
  at       "before": on entering the call; "after": once it returned;
           "inside": inside a context manager's block (its temporary exists);
           "exit": once a context manager's block has exited without an error (its
           rename is done; only such calls count);
           "yield": a generator, after it has yielded `items` items
  items    for "yield"
  signal   "SIGKILL" (default), "SIGINT", "SIGTERM"
  mark     file written just before the signal: the test checks the point was reached

Deterministic where the converter runs on one thread (--num_workers 1): the Nth call
is the same call on every run, however fast the machine.
"""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import importlib
import json
import os
import signal
import sys
from collections.abc import Callable, Iterator
from typing import Any

ENV = "TFCLASSIFY_KILL_AT"


def _names(args: tuple[Any, ...]) -> Iterator[str]:
    for a in args:
        if isinstance(a, (str, os.PathLike)):
            yield os.path.basename(os.fspath(a))
        elif isinstance(getattr(a, "file", None), str):
            yield a.file


def install(spec: dict[str, Any]) -> None:
    """Wraps every target of `spec`; the `nth` matching call among them fires."""
    calls = 0
    sig = getattr(signal, spec.get("signal", "SIGKILL"))

    def counts(args: tuple[Any, ...]) -> bool:
        nonlocal calls
        pattern = spec.get("match")
        if pattern is not None and not any(fnmatch.fnmatch(n, pattern) for n in _names(args)):
            return False
        calls += 1
        return calls == spec["nth"]

    def fire() -> None:
        with open(spec["mark"], "w", encoding="utf-8") as f:
            f.write(json.dumps(spec))
        os.kill(os.getpid(), sig)

    def wrap(orig: Callable[..., Any]) -> Callable[..., Any]:
        at = spec["at"]
        if at in ("inside", "exit"):

            @contextlib.contextmanager
            def managed(*args: Any, **kwargs: Any) -> Iterator[Any]:
                with orig(*args, **kwargs) as value:
                    if at == "inside" and counts(args):
                        fire()
                    yield value
                # Counted only once the block succeeded: a shard write given up (a
                # decode check changed the plan) renames nothing.
                if at == "exit" and counts(args):
                    fire()

            return managed

        @functools.wraps(orig)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            hit = counts(args)
            if hit and at == "before":
                fire()
            result = orig(*args, **kwargs)
            if hit and at == "after":
                fire()
            if hit and at == "yield":
                return _fire_after(result, spec["items"], fire)
            return result

        return wrapper

    for target in spec["targets"]:
        module_name, path = target.split(":")
        owner: Any = importlib.import_module(module_name)
        *parents, name = path.split(".")
        for p in parents:
            owner = getattr(owner, p)
        setattr(owner, name, wrap(getattr(owner, name)))


def _fire_after(items: Any, n: int, fire: Callable[[], None]) -> Iterator[Any]:
    for i, item in enumerate(items, start=1):
        yield item
        if i == n:
            fire()


if __name__ == "__main__":
    install(json.loads(os.environ[ENV]))
    from tfclassify import convert

    sys.exit(convert.main())
