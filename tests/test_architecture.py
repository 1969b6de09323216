"""The package's import graph keeps the architecture of DESIGN.md.

Walks every module of ``cnfs_geo`` with :mod:`ast` (imports at any depth, including those
inside functions and ``TYPE_CHECKING`` blocks: a lazy import is still a dependency) and
fails on

- an import cycle;
- a backward edge: a module importing a stage to its right in :data:`ORDER`;
- a module missing from :data:`ORDER` (a new module must be placed);
- the use of another module's private name (``from .x import _y`` or ``x._y``), except
  between modules of one subpackage (``placement/covering.py`` using ``placement/_base.py``);
  private *modules* (``sources._io``) are plumbing and may be imported.

Violations that exist today and are being fixed are listed in :data:`KNOWN`; the lead empties
it after the merge. Print the graph with ``python tests/import_graph.py``.
"""

from __future__ import annotations

import ast
import functools
import sys
from dataclasses import dataclass, field
from pathlib import Path

PACKAGE = "cnfs_geo"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE

#: Pipeline order of DESIGN.md: a module may import modules of its own rank or lower, never
#: higher. Keys are top-level modules or subpackages (their submodules share the rank).
#: Rank 0 is the foundation importable from anywhere.
ORDER: dict[str, int] = {
    # foundation (importable from anywhere)
    "_errors": 0,
    "settings": 0,
    "_validate": 0,
    "_fr": 0,
    "_progress": 0,
    "_journal": 0,
    "_dask": 0,  # optional Dask client and task plumbing of the national run
    "_runtime": 0,  # pandas string storage and GC thresholds of the pipeline's own runs
    "catalog": 0,
    "fetch": 0,  # official downloads: catalog + sources readers
    "sources": 0,
    # stages, in pipeline order
    "territory": 1,
    "offer": 2,
    "need": 3,
    "demand": 4,
    "access": 5,
    "roads": 6,
    "coverage": 7,
    "gaps": 8,
    "placement": 9,
    "itinerant": 10,
    "plan": 11,
    "robustness": 11,  # re-solves a plan's placement under perturbations (imports plan)
    # outputs: they present a Plan (duck-typed), never import plan
    "_map_style": 12,
    "_plan_view": 12,
    "maps": 13,
    "figures": 13,
    "report": 14,
    "pdf": 14,  # the report as PDF (WeasyPrint), from report's template
    "outputs": 15,  # writes a plan's GeoPackage, map and report
    "consistency": 16,  # recomputes the report's and summary's figures from plan.gpkg
    "national": 16,  # every département: plans and writes each one's outputs
    # entry points
    "cli": 17,
    "build_data": 17,  # builds the embedded 49 bundle from the raw files (a script)
}

#: Violations present when this test was written, being fixed in parallel branches. Each
#: entry is a line of :func:`violations`' output. Empty it as they are fixed: the test fails
#: both on a new violation and on an entry that no longer occurs.
KNOWN: frozenset[str] = frozenset()


@dataclass
class Module:
    name: str  # dotted, relative to the package: "access", "sources._io", "" for the package
    path: Path
    imports: set[str] = field(default_factory=set)  # modules it depends on
    private_uses: set[str] = field(default_factory=set)  # "target:_name"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _group(module: str) -> str:
    """Top-level component: the key of ORDER ("sources" for "sources.cog")."""
    return module.split(".")[0]


def _same_subpackage(a: str, b: str) -> bool:
    """True when a and b belong to one subpackage (placement/_base.py, placement/median.py)."""
    pa, pb = a.split("."), b.split(".")
    in_a = len(pa) > 1 or (ROOT / a.replace(".", "/")).is_dir()
    in_b = len(pb) > 1 or (ROOT / b.replace(".", "/")).is_dir()
    return bool(a) and in_a and in_b and pa[0] == pb[0]


def scan() -> dict[str, Module]:
    """Parse every module of the package and resolve its intra-package imports."""
    modules = {_module_name(p): Module(_module_name(p), p) for p in sorted(ROOT.rglob("*.py"))}

    def resolve(importer: str, level: int, target: str | None) -> str | None:
        """Dotted module (relative to the package) named by an import, or None if outside."""
        if level == 0:
            if target is None or not (target == PACKAGE or target.startswith(PACKAGE + ".")):
                return None
            return target[len(PACKAGE) + 1 :]
        is_pkg = modules[importer].path.name == "__init__.py"
        base = importer.split(".") if importer else []
        if not is_pkg:
            base = base[:-1]
        base = base[: len(base) - (level - 1)] if level > 1 else base
        return ".".join([*base, *([target] if target else [])])

    for name, mod in modules.items():
        tree = ast.parse(mod.path.read_text(encoding="utf-8"), filename=str(mod.path))
        aliases: dict[str, str] = {}  # local name -> module
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    target = resolve(name, 0, a.name)
                    if target is not None:
                        mod.imports.add(target)
                        if a.asname:
                            aliases[a.asname] = target
            elif isinstance(node, ast.ImportFrom):
                target = resolve(name, node.level, node.module)
                if target is None:
                    continue
                for a in node.names:
                    sub = f"{target}.{a.name}" if target else a.name
                    if sub in modules:  # `from . import access`: a module
                        mod.imports.add(sub)
                        aliases[a.asname or a.name] = sub
                    else:
                        mod.imports.add(target)
                        if _is_private(a.name) and not _same_subpackage(name, target):
                            mod.private_uses.add(f"{target}:{a.name}")
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
                and _is_private(node.attr)
            ):
                target = aliases[node.value.id]
                if f"{target}.{node.attr}" in modules:  # a private module, e.g. sources._io
                    continue
                if not _same_subpackage(name, target):
                    mod.private_uses.add(f"{target}:{node.attr}")
        mod.imports.discard(name)
        mod.imports = {m for m in mod.imports if m in modules}
    return modules


def _cycles(modules: dict[str, Module]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(modules[v].imports):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(modules):
        if v not in index:
            visit(v)
    return sorted(out)


def _label(module: str) -> str:
    return module or PACKAGE


def violations(modules: dict[str, Module] | None = None) -> list[str]:
    """Every architecture violation, one line each (stable text, sorted)."""
    modules = scan() if modules is None else modules
    found = []
    for comp in _cycles(modules):
        found.append("cycle: " + " <-> ".join(_label(m) for m in comp))
    for name, mod in modules.items():
        if not name:
            continue  # the package __init__ imports nothing heavy (checked elsewhere)
        for use in sorted(mod.private_uses):
            target, attr = use.split(":")
            found.append(f"private: {name} uses {_label(target)}.{attr}")
        if _group(name) not in ORDER:
            found.append(f"unplaced: {name} (add it to ORDER in tests/test_architecture.py)")
            continue
        for target in sorted(mod.imports):
            if target and _group(target) in ORDER and ORDER[_group(target)] > ORDER[_group(name)]:
                found.append(f"backward: {name} -> {target}")
    return sorted(set(found))


def _in_pipeline_order(modules: dict[str, Module]) -> tuple[list[str], int]:
    """Module names in pipeline order and the width of their longest label."""

    def key(m: str) -> tuple[int, str]:
        return (ORDER.get(_group(m), 99) if m else -1, m)

    return sorted(modules, key=key), max(len(_label(m)) for m in modules)


def graph_text(modules: dict[str, Module] | None = None) -> str:
    """The import graph as text: one line per module, in pipeline order."""
    modules = scan() if modules is None else modules
    names, width = _in_pipeline_order(modules)
    rank = {m: k for k, m in enumerate(names)}
    lines = []
    for name in names:
        n = sum(1 for _ in modules[name].path.open(encoding="utf-8"))
        deps = (
            ", ".join(
                _label(m)
                for m in sorted(modules[name].imports, key=lambda m: (rank.get(m, len(rank)), m))
            )
            or "-"
        )
        lines.append(f"{_label(name):<{width}}  {n:>5}  -> {deps}")
    return "\n".join(lines)


def tree_text(modules: dict[str, Module] | None = None) -> str:
    """The package as text: one line per module, in pipeline order, with its line count
    and its responsibility (the first sentence of its docstring)."""
    modules = scan() if modules is None else modules
    names, width = _in_pipeline_order(modules)
    lines = []
    for name in names:
        text = modules[name].path.read_text(encoding="utf-8")
        doc = " ".join((ast.get_docstring(ast.parse(text)) or "-").split())
        first = doc.split(". ")[0].rstrip(".")
        lines.append(f"{_label(name):<{width}}  {text.count(chr(10)):>5}  {first}")
    return "\n".join(lines)


@functools.cache
def _scanned() -> dict[str, Module]:
    """The package, scanned once for the tests below (read-only)."""
    return scan()


@functools.cache
def _found() -> frozenset[str]:
    """The package's violations, for the two tests below."""
    return frozenset(violations(_scanned()))


def test_no_new_violation():
    new = sorted(_found() - KNOWN)
    assert not new, "architecture violations (see DESIGN.md):\n" + "\n".join(new)


def test_known_violations_still_exist():
    stale = sorted(KNOWN - _found())
    assert not stale, (
        "fixed violations still listed in KNOWN (tests/test_architecture.py): "
        "remove\n" + "\n".join(stale)
    )


def test_scan_sees_relative_and_private_imports(tmp_path, monkeypatch):
    pkg = tmp_path / PACKAGE
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "settings.py").write_text("X = 1\n")
    (pkg / "territory.py").write_text("from . import offer\n")  # backward + cycle
    (pkg / "offer.py").write_text("from .territory import _helper\nfrom . import settings\n")
    (pkg / "sub" / "__init__.py").write_text("from ._base import _x\n")  # same package: fine
    (pkg / "sub" / "_base.py").write_text("def _x(): ...\n")
    (pkg / "newstage.py").write_text(
        "def f():\n    from cnfs_geo import settings\n    return settings._p\n"
    )
    monkeypatch.setitem(ORDER, "sub", 0)
    monkeypatch.setattr(sys.modules[__name__], "ROOT", pkg)
    found = violations(scan())
    assert found == [
        "backward: territory -> offer",
        "cycle: offer <-> territory",
        "private: newstage uses settings._p",
        "private: offer uses territory._helper",
        "unplaced: newstage (add it to ORDER in tests/test_architecture.py)",
    ]


def test_every_module_states_its_responsibility():
    """``python tests/import_graph.py --tree`` gives each module a one-line responsibility:
    every module of the package has a docstring."""
    missing = [
        ln.split()[0] for ln in tree_text(_scanned()).splitlines() if ln.split()[2:] == ["-"]
    ]
    assert not missing, missing


def main() -> int:
    modules = scan()
    if "--tree" in sys.argv[1:]:
        print(tree_text(modules))
        print()
    print(graph_text(modules))
    found = violations(modules)
    print()
    print(f"{len(found)} violation(s)" + (":" if found else ""))
    for line in found:
        print(("  (known) " if line in KNOWN else "  ") + line)
    return 1 if set(found) - KNOWN else 0


if __name__ == "__main__":
    raise SystemExit(main())
