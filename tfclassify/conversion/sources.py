"""Listing the inputs: a folder per class, or a CSV manifest of `path,label[,split]`.

Every regular file found is returned, even ones that will be skipped (outside a
class folder, missing, duplicated), so the converter can account for each:
accepted + skipped = found.
"""

from __future__ import annotations

import array
import csv
import hashlib
import os
import re
import unicodedata
from collections.abc import Iterator, Sequence
from typing import NamedTuple, overload

from tfclassify.core.errors import InputError

SPLIT_DIRS = ("train", "validation", "val", "test")
# Folder names that are spellings of a canonical split name.
_SPLIT_ALIASES = {"val": "validation"}
DEFAULT_SPLIT = "train"
# A split is part of every shard's file name (`{name}-{split}.tfrecord-...`): no
# separators, no '-' (which ends the name part when a shard name is parsed back).
_SPLIT_RE = re.compile(r"^[A-Za-z0-9_]+$")
NOT_REGULAR = "unsupported: not a regular file"
OUTSIDE_CLASS = "outside_class: file is not inside a class folder"
OUTSIDE_ROOT = "outside_root"


class Source(NamedTuple):
    """One input file. `problem` is a skip reason known from the listing alone. A named
    tuple: a listing makes one each time a file is read (a frozen dataclass would
    take several times as long)."""

    path: str  # as opened (absolute)
    relpath: str  # stored as image/filename: relative to the input root, '/'-separated
    label: str  # class text ("" when unknown)
    split: str
    problem: str = ""


class _Texts:
    """Strings appended one by one and read back by position, held as one UTF-8 blob
    and the offset of each end: a str object each would add its header to every
    text. `surrogatepass` gives back every str exactly, a name that is not UTF-8
    included."""

    def __init__(self) -> None:
        self._blob = bytearray()
        self._ends = array.array("q")

    def append(self, text: str) -> None:
        self._blob += text.encode("utf-8", "surrogatepass")
        self._ends.append(len(self._blob))

    def __len__(self) -> int:
        return len(self._ends)

    def __getitem__(self, i: int) -> str:
        if i < 0:
            i += len(self)
        start = self._ends[i - 1] if i else 0
        return self._blob[start : self._ends[i]].decode("utf-8", "surrogatepass")


class Listing:
    """The input files in listing order, each known by its position (its key).

    Held as columns (a relative path, a label id, a split id, and the rare problem or
    path that is not the root joined with the relative path), so a listing of millions
    of files costs tens of bytes per file, not an object per file: `source(key)`
    makes one on demand, and `sources` is a sequence of them made as they are read.
    """

    def __init__(self, root: str):
        self.root = root
        # Sorted: id = position, like Keras' image_dataset_from_directory.
        self.labels: tuple[str, ...] = ()
        # The splits came from the input (split folders / split column).
        self.presplit = False
        self._prefix = os.path.join(root, "")
        self._relpaths = _Texts()
        self._label_ids = array.array("i")  # into `labels`; -1: no label
        self._label_codes: dict[str, int] = {"": -1}  # while listing: label -> provisional id
        self._split_ids = array.array("i")  # into `split_names`
        self.split_names: tuple[str, ...] = ()
        self._split_codes: dict[str, int] = {}
        self._problems: dict[int, str] = {}
        self._paths: dict[int, str] = {}  # only where `path` is not root + relpath

    def _add(self, path: str, label: str, split: str, problem: str = "") -> None:
        key = len(self._relpaths)
        rel = _rel(path, self.root)
        self._relpaths.append(rel)
        if self._joined(rel) != path:
            self._paths[key] = path
        self._label_ids.append(self._label_codes.setdefault(label, len(self._label_codes) - 1))
        if split not in self._split_codes:
            self._split_codes[split] = len(self._split_codes)
            self.split_names = tuple(self._split_codes)
        self._split_ids.append(self._split_codes[split])
        if problem:
            self._problems[key] = problem

    def _finish(self, labels: set[str], presplit: bool) -> Listing:
        """Sets the sorted labels (every one a file has, and any without files) and
        turns the provisional label ids into positions in them."""
        self.labels = tuple(sorted(labels))
        position = {label: i for i, label in enumerate(self.labels)}
        # Provisional ids count up from 0 in the order the labels were first seen.
        final = [position[label] for label in self._label_codes if label]
        if final != list(range(len(final))):
            self._label_ids = array.array(
                "i", (final[code] if code >= 0 else -1 for code in self._label_ids)
            )
        self._label_codes = {}
        self.presplit = presplit
        return self

    def _joined(self, rel: str) -> str:
        return self._prefix + (rel if os.sep == "/" else rel.replace("/", os.sep))

    def __len__(self) -> int:
        return len(self._relpaths)

    def relpath(self, key: int) -> str:
        """Stored as image/filename: relative to the input root, '/'-separated."""
        return self._relpaths[key]

    def path(self, key: int) -> str:
        """As opened (absolute)."""
        return self._paths.get(key) or self._joined(self._relpaths[key])

    def label_id(self, key: int) -> int:
        """The position of the file's label in `labels`; -1 when it has none."""
        return self._label_ids[key]

    def label(self, key: int) -> str:
        """The class text ("" when unknown)."""
        i = self._label_ids[key]
        return self.labels[i] if i >= 0 else ""

    def split(self, key: int) -> str:
        return self.split_names[self._split_ids[key]]

    def problem(self, key: int) -> str:
        """A skip reason known from the listing alone ("" for none)."""
        return self._problems.get(key, "")

    def label_ids(self) -> array.array:
        """Every file's `label_id`, in key order."""
        return self._label_ids

    def split_ids(self) -> array.array:
        """Every file's split as a position in `split_names`, in key order."""
        return self._split_ids

    def source(self, key: int) -> Source:
        return Source(
            self.path(key), self.relpath(key), self.label(key), self.split(key), self.problem(key)
        )

    @property
    def sources(self) -> Sequence[Source]:
        return _Sources(self)

    def digest(self) -> str:
        """Identity of the input set, so `--resume` refuses a changed corpus."""
        h = hashlib.sha256()
        for key in range(len(self)):
            line = "\0".join(
                (self.relpath(key), self.label(key), self.split(key), self.problem(key))
            )
            h.update(line.encode("utf-8", "surrogateescape"))
            h.update(b"\n")
        return h.hexdigest()


class _Sources(Sequence[Source]):
    """A listing's files as `Source`s, each made when it is read."""

    def __init__(self, listing: Listing):
        self._listing = listing

    def __len__(self) -> int:
        return len(self._listing)

    @overload
    def __getitem__(self, i: int) -> Source: ...
    @overload
    def __getitem__(self, i: slice) -> list[Source]: ...
    def __getitem__(self, i: int | slice) -> Source | list[Source]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        n = len(self)
        if not -n <= i < n:
            raise IndexError(i)
        return self._listing.source(i % n)


def _visible(name: str) -> bool:
    # Hidden files (.DS_Store, editor swap files, our own temporaries) are not inputs.
    return not name.startswith(".")


def _walk_files(
    top: str, real_root: str | None, _seen: frozenset[tuple[int, int]] = frozenset()
) -> Iterator[tuple[str, str]]:
    """(path, problem) for every visible non-directory below `top`, in sorted order.

    Named pipes, sockets and devices are listed with a problem: opening a pipe
    would block the scan forever, and each must still be accounted for. scandir's
    entry types come with the directory listing: no stat per file. Linked
    directories are followed (corpora are often assembled with links), except
    into a directory already on the path, which would never end, and, unless
    `real_root` is None, a link leading outside it (listed once, with a problem).
    """
    st = os.stat(top)
    seen = _seen | {(st.st_dev, st.st_ino)}
    for entry in sorted(os.scandir(top), key=lambda e: e.name):
        if not _visible(entry.name):
            continue
        outside = _outside_root(entry, real_root)
        if outside:
            yield entry.path, outside
        elif _is_dir(entry):
            inner = entry.stat()
            if (inner.st_dev, inner.st_ino) not in seen:
                yield from _walk_files(entry.path, real_root, seen)
        else:
            yield entry.path, "" if _is_file(entry) else NOT_REGULAR


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


def _outside_root(entry: os.DirEntry, real_root: str | None) -> str:
    """The problem of a link whose target is outside `real_root`; '' for anything
    else, and for every link when `real_root` is None (links followed anywhere).
    Only links are resolved: scandir tells them apart without a stat."""
    if real_root is None or not entry.is_symlink():
        return ""
    return _escape_problem(os.path.realpath(entry.path), real_root)


def _escape_problem(target: str, real_root: str) -> str:
    if os.path.commonpath([real_root, target]) == real_root:
        return ""
    return (
        f"{OUTSIDE_ROOT}: links to {target}, outside the input root (follow_external_links is off)"
    )


def _real_root(root: str, follow_external_links: bool) -> str | None:
    """What links may lead into: the root's real path; None when they may lead anywhere."""
    return None if follow_external_links else os.path.realpath(root)


def _rel(path: str, root: str) -> str:
    # Listed paths are `root` joined with names: cut the prefix. os.path.relpath
    # would make both absolute, a getcwd call per file.
    prefix = os.path.join(root, "")
    rel = path[len(prefix) :] if path.startswith(prefix) else os.path.relpath(path, root)
    return rel.replace(os.sep, "/")


def list_folder(input_dir: str, follow_external_links: bool = False) -> Listing:
    """Folder per class, optionally below split folders (`train/`, `validation/`, ...).

    Files directly in a split or root folder (not in a class folder) are listed
    with a problem so they are reported, not silently dropped; so are links (a
    split or class folder, a file) whose target is outside `input_dir`, unless
    `follow_external_links`.
    """
    root = os.path.abspath(input_dir)
    if not os.path.isdir(root):
        raise InputError(f"input_dir not found or not a directory: {input_dir}")
    real_root = _real_root(root, follow_external_links)
    top = sorted(
        (e for e in os.scandir(root) if _is_dir(e) and _visible(e.name)), key=lambda e: e.name
    )
    presplit = _is_split_layout(input_dir, [e.name for e in top])
    listing = Listing(root)
    labels: set[str] = set()
    if presplit:
        _list_classes(root, DEFAULT_SPLIT, listing, labels, real_root, classes=False)
        for e in top:
            split = _SPLIT_ALIASES.get(e.name, e.name)
            outside = _outside_root(e, real_root)
            if outside:
                listing._add(e.path, "", split, outside)
            else:
                _list_classes(e.path, split, listing, labels, real_root)
    else:
        _list_classes(root, DEFAULT_SPLIT, listing, labels, real_root)
    if not labels:
        raise InputError(f"no class folders found in {input_dir}")
    return listing._finish(labels, presplit)


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
    folder: str,
    split: str,
    listing: Listing,
    labels: set[str],
    real_root: str | None,
    classes: bool = True,
) -> None:
    """Appends the files below `folder`: its subfolders are classes (when `classes`),
    files directly inside it are outside any class. A class folder linked from
    outside `real_root` keeps its label (an empty class) and is listed once."""
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if not _visible(entry.name):
            continue
        if not _is_dir(entry):
            listing._add(entry.path, "", split, OUTSIDE_CLASS)
        elif classes:
            labels.add(_label_text(entry.name, entry.path))
            outside = _outside_root(entry, real_root)
            found = [(entry.path, outside)] if outside else _walk_files(entry.path, real_root)
            for path, problem in found:
                listing._add(path, entry.name, split, problem)


def label_problem(label: str) -> str:
    """Why `label` cannot be a class name ('' when it can). labels.txt holds one per
    line, and its readers drop blank lines: a line break or a blank name would shift
    every class after it. Control characters and edge spaces, which no one sees and
    manifests strip, are refused too."""
    if not label.strip():
        return "is empty or only whitespace"
    if label != label.strip():
        return "starts or ends with whitespace"
    if any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in label):
        return "holds a line break or another control character"
    return ""


def _label_text(name: str, path: str) -> str:
    """A class folder's name is the label text stored in every record and in
    labels.txt: it must be text (a name in another encoding than UTF-8 is not),
    on one line (see `label_problem`)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(
            f"class folder name is not valid UTF-8: {os.fsencode(path)!r}; rename it"
        ) from None
    problem = label_problem(name)
    if problem:
        raise InputError(f"class folder name {name!r} {problem}: {path!r}; rename it")
    return name


def list_manifest(manifest: str, follow_external_links: bool = False) -> Listing:
    """CSV with header `path,label[,split]`; relative paths resolve against the CSV's folder.

    Paths outside that folder are an error (a typo like `../../` should not silently
    pull in other data); missing and duplicated files are listed with a problem, and
    so are paths through a link whose target is outside the folder, unless
    `follow_external_links`.
    """
    if not os.path.isfile(manifest):
        what = "is not a file (a folder or a pipe?)" if os.path.exists(manifest) else "not found"
        raise InputError(f"manifest {what}: {manifest}")
    root = os.path.dirname(os.path.abspath(manifest))
    real_root = _real_root(root, follow_external_links)
    real_dirs: dict[str, str] = {}  # real path of each folder rows name
    listing = Listing(root)
    labels: set[str] = set()
    seen: dict[str, int] = {}  # the first line of each path, while listing
    # A split column left empty everywhere has not split anything.
    presplit = False
    for line, row in enumerate(_manifest_rows(manifest), start=2):
        if not row["path"]:
            raise InputError(f"manifest {manifest} line {line}: empty path")
        if not row["label"]:
            raise InputError(f"manifest {manifest} line {line}: empty label for {row['path']}")
        problem = label_problem(row["label"])
        if problem:
            raise InputError(
                f"manifest {manifest} line {line}: label {row['label']!r} {problem}; fix the label"
            )
        presplit = presplit or bool(row.get("split"))
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
        elif real_root is not None:
            problem = _manifest_escape(path, real_root, real_dirs)
        if not problem and not os.path.isfile(path):
            problem = "missing: file not found"
        seen.setdefault(path, line)
        listing._add(path, row["label"], split, problem)
        labels.add(row["label"])
    if not len(listing):
        raise InputError(f"manifest {manifest} lists no files")
    return listing._finish(labels, presplit)


def _manifest_escape(path: str, real_root: str, real_dirs: dict[str, str]) -> str:
    """`_outside_root` for a manifest's path: a link on the way (a folder or the file
    itself) may lead out of the manifest's folder. Each folder is resolved once
    (`real_dirs`), the file only when it is a link."""
    folder, name = os.path.split(path)
    if folder not in real_dirs:
        real_dirs[folder] = os.path.realpath(folder)
    target = (
        os.path.realpath(path) if os.path.islink(path) else os.path.join(real_dirs[folder], name)
    )
    return _escape_problem(target, real_root)


def _manifest_rows(manifest: str) -> Iterator[dict[str, str]]:
    """The rows (stripped) of a manifest, read as they are used; any way it cannot be
    read is an InputError."""
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
            for r in reader:
                yield {k.strip(): (v or "").strip() for k, v in r.items() if k}
    except UnicodeDecodeError as e:
        raise InputError(
            f"manifest {manifest} is not UTF-8 text (byte {e.start}): save it as UTF-8 CSV"
        ) from None
    except csv.Error as e:
        raise InputError(f"manifest {manifest} is not a valid CSV file: {e}") from None
    except OSError as e:
        raise InputError(f"cannot read manifest {manifest}: {e.strerror or e}") from None
