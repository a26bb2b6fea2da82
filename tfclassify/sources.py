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
import re

from tfclassify.errors import InputError

SPLIT_DIRS = ("train", "validation", "val", "test")
# Folder names that are spellings of a canonical split name.
_SPLIT_ALIASES = {"val": "validation"}
DEFAULT_SPLIT = "train"
# A split is part of every shard's file name (`{name}-{split}.tfrecord-...`): no
# separators, no '-' (which ends the name part when a shard name is parsed back).
_SPLIT_RE = re.compile(r"^[A-Za-z0-9_]+$")
NOT_REGULAR = "unsupported: not a regular file"
OUTSIDE_CLASS = "outside_class: file is not inside a class folder"


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


def _walk_files(top: str, _seen: frozenset[tuple[int, int]] = frozenset()) -> list[tuple[str, str]]:
    """(path, problem) for every visible non-directory below `top`, in sorted order.

    Named pipes, sockets and devices are listed with a problem: opening a pipe
    would block the scan forever, and each must still be accounted for. scandir's
    entry types come with the directory listing: no stat per file. Linked
    directories are followed (corpora are often assembled with links), except
    into a directory already on the path, which would never end.
    """
    st = os.stat(top)
    seen = _seen | {(st.st_dev, st.st_ino)}
    found = []
    for entry in sorted(os.scandir(top), key=lambda e: e.name):
        if not _visible(entry.name):
            continue
        if _is_dir(entry):
            inner = entry.stat()
            if (inner.st_dev, inner.st_ino) not in seen:
                found.extend(_walk_files(entry.path, seen))
        else:
            found.append((entry.path, "" if _is_file(entry) else NOT_REGULAR))
    return found


def _is_dir(entry: os.DirEntry) -> bool:
    """False for a link that cannot be followed (a loop, say): the scan then reports
    it as unreadable instead of the listing failing."""
    try:
        return entry.is_dir()
    except OSError:
        return False


def _is_file(entry: os.DirEntry) -> bool:
    """A regular file or a link to one; a dangling link counts (reported as missing)."""
    try:
        return entry.is_file() or not os.path.exists(entry.path)
    except OSError:
        return True


def _rel(path: str, root: str) -> str:
    # Listed paths are `root` joined with names: cut the prefix. os.path.relpath
    # made both absolute (a getcwd call each), ~5% of a header-mode conversion.
    prefix = os.path.join(root, "")
    rel = path[len(prefix) :] if path.startswith(prefix) else os.path.relpath(path, root)
    return rel.replace(os.sep, "/")


def list_folder(input_dir: str) -> Listing:
    """Folder per class, optionally below split folders (`train/`, `validation/`, ...).

    Files directly in a split or root folder (not in a class folder) are listed
    with a problem so they are reported, not silently dropped.
    """
    root = os.path.abspath(input_dir)
    if not os.path.isdir(root):
        raise InputError(f"input_dir not found or not a directory: {input_dir}")
    top_dirs = sorted(e.name for e in os.scandir(root) if _is_dir(e) and _visible(e.name))
    presplit = _is_split_layout(input_dir, top_dirs)
    sources: list[Source] = []
    labels: set[str] = set()
    if presplit:
        _list_classes(root, root, DEFAULT_SPLIT, sources, labels, classes=False)
        for d in top_dirs:
            _list_classes(root, os.path.join(root, d), _SPLIT_ALIASES.get(d, d), sources, labels)
    else:
        _list_classes(root, root, DEFAULT_SPLIT, sources, labels)
    if not labels:
        raise InputError(f"no class folders found in {input_dir}")
    return Listing(root, tuple(sources), tuple(sorted(labels)), presplit)


def _is_split_layout(input_dir: str, top_dirs: list[str]) -> bool:
    """Whether the top folders are splits. A mix of split and other folders is
    refused: read as classes, `train/` and `validation/` would label every image wrong."""
    splits = [d for d in top_dirs if d in SPLIT_DIRS]
    if not splits:
        return False
    others = [d for d in top_dirs if d not in SPLIT_DIRS]
    if others:
        raise InputError(
            f"{input_dir} mixes split folders {splits} with other folders {others}: put "
            "every class folder inside a split folder (or, to use these names as classes, "
            "list the files in a manifest)"
        )
    canonical = [_SPLIT_ALIASES.get(d, d) for d in splits]
    if len(set(canonical)) < len(canonical):
        raise InputError(f"{input_dir} has both val/ and validation/ folders: merge them")
    return True


def _list_classes(
    root: str,
    folder: str,
    split: str,
    sources: list[Source],
    labels: set[str],
    classes: bool = True,
) -> None:
    """Appends the files below `folder`: its subfolders are classes (when `classes`),
    files directly inside it are outside any class."""
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if not _visible(entry.name):
            continue
        if not _is_dir(entry):
            sources.append(Source(entry.path, _rel(entry.path, root), "", split, OUTSIDE_CLASS))
        elif classes:
            labels.add(_label_text(entry.name, entry.path))
            sources.extend(
                Source(p, _rel(p, root), entry.name, split, problem)
                for p, problem in _walk_files(entry.path)
            )


def _label_text(name: str, path: str) -> str:
    """A class folder's name is the label text stored in every record and in
    labels.txt: it must be text (a name in another encoding than UTF-8 is not)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(
            f"class folder name is not valid UTF-8: {os.fsencode(path)!r}; rename it"
        ) from None
    return name


def list_manifest(manifest: str) -> Listing:
    """CSV with header `path,label[,split]`; relative paths resolve against the CSV's folder.

    Paths outside that folder are an error (a typo like `../../` should not silently
    pull in other data); missing and duplicated files are listed with a problem.
    """
    if not os.path.isfile(manifest):
        what = "is not a file (a folder or a pipe?)" if os.path.exists(manifest) else "not found"
        raise InputError(f"manifest {what}: {manifest}")
    root = os.path.dirname(os.path.abspath(manifest))
    header, rows = _read_manifest(manifest)
    sources: list[Source] = []
    seen: dict[str, int] = {}
    # A split column left empty everywhere has not split anything.
    presplit = any(row.get("split") for row in rows)
    for line, row in enumerate(rows, start=2):
        if not row["path"]:
            raise InputError(f"manifest {manifest} line {line}: empty path")
        if not row["label"]:
            raise InputError(f"manifest {manifest} line {line}: empty label for {row['path']}")
        split = row.get("split") or DEFAULT_SPLIT
        if not _SPLIT_RE.match(split):
            raise InputError(
                f"manifest {manifest} line {line}: split {split!r} is not a valid split name "
                "(letters, digits and _ only: it becomes part of the shard file names)"
            )
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


def _read_manifest(manifest: str) -> tuple[list[str], list[dict[str, str]]]:
    """Header and rows (stripped) of a manifest; any way it cannot be read is an InputError."""
    try:
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
    except UnicodeDecodeError as e:
        raise InputError(
            f"manifest {manifest} is not UTF-8 text (byte {e.start}): save it as UTF-8 CSV"
        ) from None
    except csv.Error as e:
        raise InputError(f"manifest {manifest} is not a valid CSV file: {e}") from None
    except OSError as e:
        raise InputError(f"cannot read manifest {manifest}: {e.strerror or e}") from None
    return header, rows
