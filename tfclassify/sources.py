"""Listing the inputs: a folder per class, or a CSV manifest of `path,label[,split]`.

Every regular file found is returned, even ones that will be skipped (outside a
class folder, missing, duplicated), so the converter can account for each:
accepted + skipped = found.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import os

from tfclassify.errors import InputError

SPLIT_DIRS = ("train", "validation", "val", "test")
DEFAULT_SPLIT = "train"


@dataclasses.dataclass(frozen=True)
class Source:
    """One input file. `problem` is a skip reason known from the listing alone."""

    path: str  # as opened (absolute)
    relpath: str  # stored as image/filename: relative to the input root, '/'-separated
    label: str  # class text ("" when unknown)
    split: str
    problem: str = ""


@dataclasses.dataclass(frozen=True)
class Listing:
    root: str
    sources: tuple[Source, ...]
    labels: tuple[str, ...]  # sorted: id = position, like Keras' image_dataset_from_directory
    presplit: bool  # splits came from the input (split folders / split column)

    def digest(self) -> str:
        """Identity of the input set, so `--resume` refuses a changed corpus."""
        h = hashlib.sha256()
        for s in self.sources:
            line = "\0".join((s.relpath, s.label, s.split, s.problem))
            h.update(line.encode("utf-8", "surrogateescape"))
            h.update(b"\n")
        return h.hexdigest()


def _visible(name: str) -> bool:
    # Hidden files (.DS_Store, editor swap files, our own temporaries) are not inputs.
    return not name.startswith(".")


def _walk_files(top: str) -> list[str]:
    found = []
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = sorted(d for d in dirnames if _visible(d))
        found.extend(os.path.join(dirpath, f) for f in sorted(filenames) if _visible(f))
    return found


def _rel(path: str, root: str) -> str:
    return os.path.relpath(path, root).replace(os.sep, "/")


def list_folder(input_dir: str) -> Listing:
    """Folder per class, optionally below split folders (`train/`, `validation/`, ...).

    Files directly in a split or root folder (not in a class folder) are listed
    with a problem so they are reported, not silently dropped.
    """
    root = os.path.abspath(input_dir)
    if not os.path.isdir(root):
        raise InputError(f"input_dir not found or not a directory: {input_dir}")
    top_dirs = sorted(e.name for e in os.scandir(root) if e.is_dir() and _visible(e.name))
    presplit = bool(top_dirs) and all(d in SPLIT_DIRS for d in top_dirs)
    split_roots = (
        [(d, os.path.join(root, d)) for d in top_dirs] if presplit else [(DEFAULT_SPLIT, root)]
    )
    sources: list[Source] = []
    labels: set[str] = set()
    for split, split_root in split_roots:
        for entry in sorted(os.scandir(split_root), key=lambda e: e.name):
            if not _visible(entry.name):
                continue
            if entry.is_dir():
                labels.add(entry.name)
                sources.extend(
                    Source(p, _rel(p, root), entry.name, split) for p in _walk_files(entry.path)
                )
            elif entry.is_file():
                sources.append(
                    Source(
                        entry.path,
                        _rel(entry.path, root),
                        "",
                        split,
                        "outside_class: file is not inside a class folder",
                    )
                )
    if not labels:
        raise InputError(f"no class folders found in {input_dir}")
    return Listing(root, tuple(sources), tuple(sorted(labels)), presplit)


def list_manifest(manifest: str) -> Listing:
    """CSV with header `path,label[,split]`; relative paths resolve against the CSV's folder.

    Paths outside that folder are an error (a typo like `../../` should not silently
    pull in other data); missing and duplicated files are listed with a problem.
    """
    if not os.path.isfile(manifest):
        raise InputError(f"manifest not found: {manifest}")
    root = os.path.dirname(os.path.abspath(manifest))
    with open(manifest, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        header = [h.strip() for h in (reader.fieldnames or [])]
        missing = [c for c in ("path", "label") if c not in header]
        if missing:
            raise InputError(
                f"manifest {manifest} is missing column(s) {missing}; header is {header} "
                "(expected path,label[,split])"
            )
        rows = [{k.strip(): (v or "").strip() for k, v in r.items() if k} for r in reader]
    sources: list[Source] = []
    seen: dict[str, int] = {}
    presplit = "split" in header
    for line, row in enumerate(rows, start=2):
        if not row["path"]:
            raise InputError(f"manifest {manifest} line {line}: empty path")
        if not row["label"]:
            raise InputError(f"manifest {manifest} line {line}: empty label for {row['path']}")
        split = row.get("split") or DEFAULT_SPLIT
        path = os.path.normpath(os.path.join(root, row["path"]))
        if os.path.commonpath([root, path]) != root:
            raise InputError(
                f"manifest {manifest} line {line}: path {row['path']!r} is outside the "
                f"manifest's folder {root}"
            )
        problem = ""
        if path in seen:
            problem = f"duplicate: also listed on line {seen[path]}"
        elif not os.path.isfile(path):
            problem = "missing: file not found"
        seen.setdefault(path, line)
        sources.append(Source(path, _rel(path, root), row["label"], split, problem))
    if not sources:
        raise InputError(f"manifest {manifest} lists no files")
    labels = tuple(sorted({s.label for s in sources}))
    return Listing(root, tuple(sources), labels, presplit)
