"""The package's layers depend one way: app -> api -> jobs -> store -> domain, and each layer
imports on its own. A cycle between packages fails here before it confuses a reader."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "santamon"

# What each part of santamon/ may import from the others; anything not named is a leaf
# module (timeutil, logs, metrics, certs, progress, workers, tasks, memory) that imports
# nothing of ours but config/timeutil.
ALLOWED = {
    "domain": {"timeutil"},
    "config": {"domain"},
    "store": {"domain", "config", "timeutil", "tasks"},
    "jobs": {"store", "domain", "config", "timeutil"},
    "api": {"jobs", "store", "domain", "config", "timeutil", "metrics", "logs", "tasks"},
    "app": {"api", "jobs", "store", "config", "timeutil", "metrics"},
    # The CLI also makes and stores keys (domain.keys) outside the server.
    "cli": {"app", "config", "certs", "logs", "store", "progress", "domain", "timeutil",
            "workers", "tasks", "memory"},
    "__main__": {"cli"},
}
LEAVES = {"timeutil", "logs", "metrics", "certs", "progress", "workers", "tasks", "memory",
          "__init__"}


def unit(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def imported_units(path: Path) -> set[str]:
    """The parts of santamon/ this file imports (relative or absolute), itself excluded."""
    depth = len(path.relative_to(PACKAGE).parts) - 1  # folders below santamon/
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                up = node.level - 1
                if up < depth:  # stays inside the file's own top-level unit
                    continue
                if node.module:
                    found.add(node.module.split(".")[0])
                else:  # `from .. import x`: a module of ours, or a name from __init__
                    found |= {alias.name if (PACKAGE / alias.name).exists()
                              or (PACKAGE / f"{alias.name}.py").exists() else "__init__"
                              for alias in node.names}
            elif (node.module or "").startswith("santamon."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {alias.name.split(".")[1] for alias in node.names
                      if alias.name.startswith("santamon.")}
    return found - {unit(path), ""}


def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        if "static" in path.relative_to(PACKAGE).parts:
            continue
        edges.setdefault(unit(path), set()).update(imported_units(path))
    return edges


def test_every_part_imports_only_what_its_layer_allows():
    for part, imports in graph().items():
        allowed = ALLOWED.get(part, {"config", "timeutil"} if part in LEAVES else set())
        assert imports <= allowed | {"__init__"}, f"santamon/{part} imports {imports - allowed}"


def test_there_is_no_cycle_between_parts():
    edges = graph()
    for start in edges:
        stack, seen = [start], set()
        while stack:
            for nxt in edges.get(stack.pop(), ()):
                assert nxt != start, f"a cycle through santamon/{start}"
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)


@pytest.mark.parametrize("module", ["santamon.domain.agents", "santamon.store",
                                    "santamon.jobs.scheduler", "santamon.api.routes",
                                    "santamon.app", "santamon.cli"])
def test_each_layer_imports_on_its_own(module):
    subprocess.run([sys.executable, "-c", f"import {module}"], check=True, timeout=60)
