"""The house's rules, read from the source with `ast`: imports run one way, functions stay short.

Imports: no cycle among facerec's modules, and no core module imports an
app package (`album`, `camera`, `server`, `training`, `evaluation`, the CLI).
An import inside a function or a TYPE_CHECKING block counts like any other:
it is the same dependency, only paid for later. The package root
(`facerec/__init__.py`, the public API and the place that composes the apps'
erasers) and `__main__` sit above every app.

Functions: none over `MAX_LINES`. The parameters of a Typer command (its
options, decorators and help text: `*.command()`/`*.callback()` decorators or
`app.command(...)(fn)`) are declarations, not work, and are not counted;
its body is.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "facerec"
TOP = "facerec"
APPS = ("album", "camera", "door", "server", "training", "evaluation", "cli", "cli_common")
ABOVE_ALL = {TOP, f"{TOP}.__main__"}
MAX_LINES = 80
MAX_TOP_MODULES = 12


def module_name(path: Path, src: Path = SRC) -> str:
    parts = list(path.relative_to(src.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, modules: set[str], src: Path = SRC) -> set[str]:
    """The facerec modules `path` imports (absolute or relative, anywhere in the file)."""
    me = module_name(path, src)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found: set[str] = set()

    def deepest(name: str) -> str:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name

    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names = [deepest(a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            # `from pkg import sub` imports the module pkg.sub; `from pkg import name`, pkg
            names = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in modules else deepest(base)
                for a in node.names
            ]
        else:
            continue
        found.update(n for n in names if n and n != me)
    return found


def import_graph(src: Path = SRC) -> dict[str, set[str]]:
    files = sorted(src.rglob("*.py"))
    modules = {module_name(f, src) for f in files}
    return {module_name(f, src): imported_modules(f, modules, src) for f in files}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = []
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        work.append((root, iter(sorted(graph[root]))))
        while work:
            v, children = work[-1]
            w = next(children, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                group = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    group.append(w)
                    if w == v:
                        break
                if len(group) > 1:
                    found.append(sorted(group))
    return found


def is_app(module: str) -> bool:
    return any(module == f"{TOP}.{a}" or module.startswith(f"{TOP}.{a}.") for a in APPS)


def core_to_app(graph: dict[str, set[str]]) -> list[str]:
    return [
        f"{m} -> {t}"
        for m in sorted(graph)
        if not is_app(m) and m not in ABOVE_ALL
        for t in sorted(graph[m])
        if is_app(t)
    ]


def _is_command_decorator(node: ast.expr) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in ("command", "callback")
    )


def _signature_lines(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Decorators, the def line, the parameters and the docstring: the declaration."""
    start = min([fn.lineno] + [d.lineno for d in fn.decorator_list])
    body = fn.body
    if len(body) > 1 and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    return body[0].lineno - start


def long_functions(src: Path = SRC, limit: int = MAX_LINES) -> dict[str, int]:
    """`path:Qualified.name` -> counted lines, for every function over `limit`."""
    out: dict[str, int] = {}
    for path in sorted(src.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        registered = {
            n.args[0].id
            for n in ast.walk(tree)
            if isinstance(n, ast.Call)
            and _is_command_decorator(n.func)
            and n.args
            and isinstance(n.args[0], ast.Name)
        }

        def is_command(
            fn: ast.FunctionDef | ast.AsyncFunctionDef, names: set[str] = registered
        ) -> bool:
            return fn.name in names or any(_is_command_decorator(d) for d in fn.decorator_list)

        def visit(node: ast.AST, prefix: str, rel: str) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.ClassDef):
                    visit(child, f"{prefix}{child.name}.", rel)
                elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                    commands = [
                        g
                        for g in ast.walk(child)
                        if isinstance(g, ast.FunctionDef | ast.AsyncFunctionDef) and is_command(g)
                    ]
                    assert child.end_lineno is not None
                    lines = child.end_lineno - child.lineno + 1
                    lines -= sum(_signature_lines(g) for g in commands)
                    if lines > limit:
                        out[f"{rel}:{prefix}{child.name}"] = lines
                    visit(child, f"{prefix}{child.name}.", rel)
                else:
                    visit(child, prefix, rel)

        visit(tree, "", path.relative_to(src.parent).as_posix())
    return out


def test_facerec_has_no_import_cycle() -> None:
    assert cycles(import_graph()) == []


def test_no_core_module_imports_an_app() -> None:
    assert core_to_app(import_graph()) == []


def test_the_top_level_stays_small() -> None:
    # The road shows in the folders (faces/, decisions/, the apps): a new module finds its
    # package instead of joining a flat list at the top.
    top = sorted(p.name for p in SRC.glob("*.py"))
    assert len(top) <= MAX_TOP_MODULES, top


def test_the_graph_sees_imports_of_every_kind(tmp_path: Path) -> None:
    # The checks are only as good as the graph: a deferred import, a TYPE_CHECKING one and a
    # relative one are all edges, and a two-module loop through them is a cycle.
    pkg = tmp_path / TOP
    (pkg / "album").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "album" / "__init__.py").write_text("")
    (pkg / "album" / "store.py").write_text("from ..images import load\n")
    (pkg / "images.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from facerec.errors import E\n"
        "def load():\n    from facerec.album import store\n"
    )
    (pkg / "errors.py").write_text("import facerec.images\n")
    graph = import_graph(pkg)
    assert graph[f"{TOP}.images"] == {f"{TOP}.errors", f"{TOP}.album.store"}
    assert cycles(graph) == [[f"{TOP}.album.store", f"{TOP}.errors", f"{TOP}.images"]]
    assert core_to_app(graph) == [f"{TOP}.images -> {TOP}.album.store"]


def test_no_function_over_80_lines() -> None:
    # No allow-list: a long function is split into steps of one job each, not excused.
    assert long_functions() == {}


def test_option_declarations_do_not_count_but_command_bodies_do(tmp_path: Path) -> None:
    pkg = tmp_path / TOP
    pkg.mkdir()
    options = "".join(f"    o{i}: int = typer.Option({i}, help='h'),\n" for i in range(90))
    body = "".join(f"    x = {i}\n" for i in range(60))
    (pkg / "cli.py").write_text(
        f"@app.command()\ndef short(\n{options}) -> None:\n    'Doc.'\n{body}\n"
        f"def registered(\n{options}) -> None:\n{body}\n"
        "app.command(name='r')(registered)\n"
        f"@app.command()\ndef long(\n{options}) -> None:\n{body}{body}\n"
        f"def plain(\n{options}) -> None:\n{body}\n"
    )
    assert set(long_functions(pkg)) == {"facerec/cli.py:long", "facerec/cli.py:plain"}
