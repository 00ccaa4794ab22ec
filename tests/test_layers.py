"""The layer table of docs/architecture.md holds: no import (function-local ones included) goes up a
layer or across a row, and no two packages import each other, directly or round a longer cycle."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "distill"
DOC = ROOT / "docs" / "architecture.md"

# (importer package, imported package): why the arrow is tolerated. Keep this list short.
ALLOWED: dict[tuple[str, str], str] = {}


def layer_table() -> dict[str, int]:
    text = DOC.read_text()
    block = text[text.index("<!-- layers:"):text.index("<!-- end layers -->")]
    layers = {}
    for line in block.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and cells[0].isdigit():
            for name in re.findall(r"`([\w.]+)`", cells[1]):
                layers[name] = int(cells[0])
    return layers


def package_of(module: str) -> str | None:
    """``distill.train.trainer`` -> ``train``; ``distill.types`` -> ``types``; other libraries -> None."""
    parts = module.split(".")
    if parts[0] != "distill":
        return None
    return parts[1] if len(parts) > 1 else "__init__"


def is_module(name: str) -> bool:
    return (SRC / f"{name}.py").is_file() or (SRC / name / "__init__.py").is_file()


def imports(path: Path) -> list[tuple[str, int]]:
    """Every distill module ``path`` imports (anywhere in the file), with its line."""
    rel = path.relative_to(SRC.parent).with_suffix("")
    package_parts = list(rel.parts[:-1]) if rel.name != "__init__" else list(rel.parts)
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this file's package
                base = package_parts[: len(package_parts) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            if module == "distill":  # `from distill import distributed`: a name may be a module
                found += [(f"distill.{a.name}" if is_module(a.name) else "distill", node.lineno) for a in node.names]
            else:
                found.append((module, node.lineno))
    return found


def package_edges() -> dict[tuple[str, str], list[str]]:
    """(importer, imported) package pairs -> where (file:line) the import is."""
    edges: dict[tuple[str, str], list[str]] = {}
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC)
        importer = rel.parts[0].removesuffix(".py") if len(rel.parts) > 1 or rel.name != "__init__.py" else "__init__"
        for module, line in imports(path):
            imported = package_of(module)
            if imported and imported != importer:
                edges.setdefault((importer, imported), []).append(f"{rel}:{line}")
    return edges


def test_the_table_names_every_package():
    layers = layer_table()
    packages = {p.name.removesuffix(".py") for p in SRC.iterdir()
                if (p.is_dir() and (p / "__init__.py").is_file()) or p.suffix == ".py"}
    assert packages - set(layers) == set(), "add these packages to the table in docs/architecture.md"
    assert set(layers) - packages == set(), "the table names packages that do not exist"


def test_the_first_apis_old_homes_are_gone():
    """The modules that only re-exported distill.pipeline are removed (issue 22): each thing has one home."""
    old = ("experiment", "recipes")
    assert not [name for name in old if is_module(name)], "remove the re-exporting modules"
    users = []
    for folder in ("src", "tests", "benchmarks"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                    [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
                names += [f"distill.{a.name}" for a in getattr(node, "names", []) if names == ["distill"]]
                if any(n.split(".")[:2] in [["distill", name] for name in old] for n in names):
                    users.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not users, f"import distill.pipeline (experiment, modes, stages) instead: {users}"


def violations(edges: dict[tuple[str, str], list[str]], layers: dict[str, int]) -> list[str]:
    shared_rows = {0, max(layers.values())}  # the bottom and the wiring row: their modules may use each other
    bad = []
    for (importer, imported), where in sorted(edges.items()):
        if (importer, imported) in ALLOWED:
            continue
        low, high = layers[imported], layers[importer]
        if high < low or (high == low and high not in shared_rows):
            bad.append(f"{importer} (layer {high}) imports {imported} (layer {low}) at {', '.join(where[:3])}")
    return bad


def cycles(edges) -> list[str]:
    graph: dict[str, set[str]] = {}
    for importer, imported in edges:
        graph.setdefault(importer, set()).add(imported)
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    found = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                found.append(" -> ".join([*path[path.index(nxt):], nxt]))
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    return found


def test_no_import_goes_up_a_layer_or_across_a_row():
    bad = violations(package_edges(), layer_table())
    assert not bad, "imports the layer table forbids:\n" + "\n".join(bad)


def test_no_cycle_between_packages():
    found = cycles(package_edges())
    assert not found, "package cycles:\n" + "\n".join(found)


def test_the_checks_catch_an_upward_arrow_a_sideways_arrow_and_a_cycle():
    layers = {"errors": 0, "io": 0, "data": 3, "methods": 4, "export": 8, "report": 8, "cli": 11}
    edges = {("data", "methods"): ["data/x.py:1"], ("export", "report"): ["export/y.py:2"],
             ("io", "errors"): ["io.py:3"], ("methods", "data"): ["methods/z.py:4"]}
    bad = violations(edges, layers)
    assert len(bad) == 2 and bad[0].startswith("data (layer 3) imports methods (layer 4) at data/x.py:1")
    assert bad[1].startswith("export (layer 8) imports report (layer 8)")
    assert cycles(edges) == ["data -> methods -> data"]


def test_the_walker_sees_function_local_and_relative_imports(tmp_path):
    # The checks above are only as good as the walker: it must see imports hidden in functions.
    sample = SRC / "knowledge" / "cache.py"
    found = {m for m, _ in imports(sample)}
    assert "distill.data.augment" in found
    local = SRC / "data" / "bundle.py"  # imports text_bundle inside a function
    assert "distill.data.text_bundle" in {m for m, _ in imports(local)}
    assert package_of("distill.train.trainer") == "train" and package_of("torch.nn") is None
