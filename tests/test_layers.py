"""The package's shape: imports run one way (commands -> stages -> core), with no circle.

Every module under tfclassify/ is parsed (not imported) and every import statement in
it counts, those inside functions too: a deferred import is still a dependency.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent / "tfclassify"

# What each layer may import besides itself. The top level (the commands, the CLI
# helpers and the lazy public API) may import anything.
ALLOWED = {
    "core": set(),
    "conversion": {"core"},
    "reading": {"core"},
    "models": {"core"},
    "inference": {"core", "reading", "models"},
    "beam": {"core", "conversion", "reading", "models", "inference"},
    "testing": {"core"},
}
# Optional dependencies only their own package imports, so the rest works without them.
OPTIONAL = {"apache_beam": "beam"}
# The trainer reads its data through the reader; no other model code knows it.
EXTRA = {"tfclassify.models.training": {"reading"}}


def _modules() -> dict[str, pathlib.Path]:
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = ("tfclassify", *path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: pathlib.Path) -> list[tuple[int, str]]:
    """(line, module) for every tfclassify module `name` imports, anywhere in it."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                # `from a import b` imports module a.b when there is one, else a name of a.
                sub = f"{base}.{alias.name}"
                found.append((node.lineno, sub if sub in MODULES else base))
    return [(line, m) for line, m in found if m == "tfclassify" or m.startswith("tfclassify.")]


def _external_imports(path: pathlib.Path) -> list[tuple[int, str]]:
    """(line, top-level package) for every absolute import of `path` outside tfclassify."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ALLOWED else "top level"


def test_the_modules_are_found():
    assert {"tfclassify.core.options", "tfclassify.convert", "tfclassify.testing"} <= set(MODULES)
    assert {_layer(m) for m in MODULES} == {*ALLOWED, "top level"}


def test_imports_run_from_commands_to_stages_to_core():
    wrong = []
    for name, path in MODULES.items():
        layer = _layer(name)
        if layer == "top level":
            continue
        allowed = {layer} | ALLOWED[layer] | EXTRA.get(name, set())
        for line, target in _imports(name, path):
            if _layer(target) not in allowed:
                wrong.append(
                    f"{path.relative_to(ROOT.parent)}:{line} imports {target} "
                    f"({layer} may import only {', '.join(sorted(allowed))})"
                )
    assert not wrong, "\n".join(wrong)


def test_optional_dependencies_are_imported_only_by_their_package():
    wrong = [
        f"{path.relative_to(ROOT.parent)}:{line} imports {package}"
        for name, path in MODULES.items()
        for line, package in _external_imports(path)
        if package in OPTIONAL and _layer(name) != OPTIONAL[package]
    ]
    assert not wrong, "\n".join(wrong)
    # The check sees them where they are allowed.
    assert "apache_beam" in {p for _, p in _external_imports(ROOT / "beam" / "inference.py")}


def test_there_is_no_import_circle():
    graph = {
        name: {target for _, target in _imports(name, path) if target in MODULES}
        for name, path in MODULES.items()
    }
    done: set[str] = set()

    def visit(name: str, trail: list[str]) -> None:
        if name in trail:
            circle = [*trail[trail.index(name) :], name]
            pytest.fail("import circle: " + " -> ".join(circle))
        if name in done:
            return
        for target in sorted(graph[name]):
            visit(target, [*trail, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])


def test_the_check_catches_a_deferred_import(tmp_path):
    """The parse sees imports inside functions, which a check of module tops misses."""
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from tfclassify.models import runtime\n")
    assert _imports("tfclassify.reading.m", module) == [(2, "tfclassify.models.runtime")]
