"""The house's rules, checked over the source: imports point one way (app -> ui -> train -> core), core never
imports gradio, scripts never import tests, and no module or room imports another that imports it back."""
from __future__ import annotations

import ast
import functools
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LEVEL = {"core": 0, "train": 1, "ui": 2, "app": 3}  # a module may import only its own level or lower ones
PACKAGES = ("core", "train", "ui", "app", "scripts", "tests")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def source_modules() -> dict[str, Path]:
    files = [REPO / "app.py", *[p for top in ("core", "train", "ui", "scripts") for p in (REPO / top).rglob("*.py")]]
    return {module_name(p): p for p in files}


def imported_names(path: Path, modules: dict[str, Path]) -> set[str]:
    """Every module of the project that `path` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:  # `from core.bench import machine` imports the module core.bench.machine
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in modules else node.module)
    return {name for name in found if name.split(".")[0] in PACKAGES or name.split(".")[0] == "gradio"}


@functools.cache  # the source does not change while the tests run
def import_graph() -> dict[str, set[str]]:
    modules = source_modules()
    return {name: imported_names(path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan), i.e. groups that import each other."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in graph:
                continue
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def room(module: str) -> str:
    """core.models.zoo -> core.models; train.distill -> train; core.paths -> core.paths"""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "core" else parts[0]


def test_imports_point_one_way():
    upward = [f"{source} imports {target}" for source, targets in import_graph().items()
              for target in targets if source.split(".")[0] in LEVEL and target.split(".")[0] in LEVEL
              and LEVEL[target.split(".")[0]] > LEVEL[source.split(".")[0]]]
    assert upward == []


def test_core_never_imports_gradio_and_scripts_never_import_tests():
    graph = import_graph()
    assert [m for m, targets in graph.items() if m.startswith(("core", "train")) and "gradio" in targets] == []
    assert [m for m, targets in graph.items() if any(t.split(".")[0] == "tests" for t in targets)] == []


def test_no_module_imports_one_that_imports_it_back():
    assert cycles(import_graph()) == []


def test_no_two_rooms_import_each_other():
    rooms: dict[str, set[str]] = {}
    for source, targets in import_graph().items():
        rooms.setdefault(room(source), set()).update(room(t) for t in targets if room(t) != room(source))
    assert cycles(rooms) == []


def test_the_check_finds_a_circle_and_an_upward_import():
    """The checks above would fail on the faults they guard against."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    assert room("core.models.zoo") == "core.models" and room("train.distill") == "train"


def test_ruff_is_clean():
    """ruff (configured in pyproject.toml, installed by requirements-dev.txt) finds nothing."""
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "--quiet", "."], cwd=REPO, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def heading_anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("document", ["README.md", "assets/README.md"])
def test_every_link_in_the_docs_leads_somewhere(document):
    path = REPO / document
    text = path.read_text(encoding="utf-8")
    anchors = {heading_anchor(h) for h in re.findall(r"^#+ (.+)$", text, flags=re.M)}
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if target.startswith(("http://", "https://")):
            continue
        if target.startswith("#"):
            assert target[1:] in anchors, f"{document}: no heading gives the anchor {target}"
        else:
            assert (path.parent / target.split("#")[0]).exists(), f"{document}: {target} is not in the repository"


def test_heading_anchors_are_githubs():
    assert heading_anchor("Smaller vocabularies: the paper's run") == "smaller-vocabularies-the-papers-run"
    assert heading_anchor("Options, deployment and security") == "options-deployment-and-security"


def test_the_shipped_screenshots_are_those_the_readme_shows():
    from scripts.readme_screenshots import TARGET, shown_in_readme

    assert shown_in_readme() == {path.name for path in TARGET.glob("*.png")}
