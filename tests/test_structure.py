"""Structural rules a reader relies on: data flows one way (no import cycles, hidden imports
inside functions included), and the public API is what the package docstring says."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import crimeaudit

SRC = Path(crimeaudit.__file__).parent


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def import_graph() -> dict[str, set[str]]:
    """Every crimeaudit module and the crimeaudit modules it imports, anywhere in its body."""
    modules = {_module_name(p): p for p in SRC.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    pkg = name if is_pkg else name.rsplit(".", 1)[0]
                    for _ in range(node.level - 1):
                        pkg = pkg.rsplit(".", 1)[0]
                    base = f"{pkg}.{base}" if base else pkg
                # "from pkg import module" names a module; "from module import name" does not.
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                           for a in node.names]
            for t in targets:
                if t in modules and t != name:
                    graph[name].add(t)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Import cycles, ignoring a package's own __init__ importing its submodules (Python
    runs a package's __init__ before any of its modules, so that edge is not a cycle)."""
    def edges(m: str) -> set[str]:
        return {t for t in graph[m] if not t.startswith(m + ".")}

    found, state, stack = [], {}, []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for t in sorted(edges(m)):
            if state.get(t) == 1:
                found.append(stack[stack.index(t):] + [t])
            elif t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    return found


def test_no_module_imports_another_that_imports_it_back():
    found = cycles(import_graph())
    assert not found, "import cycles:\n" + "\n".join(" -> ".join(c) for c in found)


def test_the_cycle_check_can_fail():
    assert cycles({"a": {"b"}, "b": {"a"}}) == [["a", "b", "a"]]
    assert cycles({"p": {"p.x"}, "p.x": {"p.y"}, "p.y": set()}) == []


def test_every_public_name_resolves_and_no_verb_shadows_a_subpackage():
    for name in crimeaudit.__all__:
        assert getattr(crimeaudit, name) is not None
    verbs = [n for n in crimeaudit.__all__ if callable(getattr(crimeaudit, n))]
    subpackages = {p.name for p in SRC.iterdir() if (p / "__init__.py").exists()}
    assert not set(verbs) & subpackages
    # Importing every stage, as a notebook user would, leaves the verbs callable.
    for pkg in sorted(subpackages):
        importlib.import_module(f"crimeaudit.{pkg}")
    from crimeaudit.linkage import LinkSettings  # noqa: F401 - the import that used to break

    assert callable(crimeaudit.link) and callable(crimeaudit.screen)
    assert callable(crimeaudit.ingest) and callable(crimeaudit.simulate)


def test_the_readme_api_example_runs(tmp_path):
    """The README's Python example, as a new user pastes it (on a smaller force)."""
    import re
    import subprocess
    import sys

    readme = (SRC.parents[1] / "README.md").read_text(encoding="utf-8")
    code = re.search(r"```python\n(.*?)```", readme, re.S).group(1)
    assert "ca.estimate(" in code and "ca.link(" in code
    code = code.replace("n_incidents=20_000", "n_incidents=3_000").replace("size=1500", "size=400")
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "recording_rate [all]" in r.stdout and "se " in r.stdout
    assert (tmp_path / "kent" / "reports" / "report.html").exists()
