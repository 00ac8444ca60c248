"""dvc.yaml's deps cannot go stale: every repo file a stage's module imports is listed.

Each stage's command is `python -m <module>`; its in-repo imports are followed transitively
(parsed with `ast`: module-level and function-level imports of `training.*` and `serving.*`,
with each package's `__init__.py`; `if TYPE_CHECKING:` imports never run). A dep may be the file
itself or a folder holding it.
"""

from __future__ import annotations

import ast
from pathlib import Path, PurePosixPath

import pytest
import yaml

from training.config import REPO_ROOT

PACKAGES = ("training", "serving")


def module_file(module: str, root: Path = REPO_ROOT) -> Path | None:
    """The repo file of a dotted module name, or None if it is not an in-repo module."""
    if module.split(".")[0] not in PACKAGES:
        return None
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _import_nodes(tree: ast.AST, module_level_only: bool) -> list[ast.Import | ast.ImportFrom]:
    """Import statements that can run: not under `if TYPE_CHECKING:`, and with
    `module_level_only` not inside a function either."""
    found: list[ast.Import | ast.ImportFrom] = []
    stack = list(ast.iter_child_nodes(tree))
    while stack:
        node = stack.pop()
        if _is_type_checking(node):
            continue
        if module_level_only and isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        stack.extend(ast.iter_child_nodes(node))
    return found


def imported_modules(path: Path, module_level_only: bool = False) -> set[str]:
    """Every module an import statement in `path` names (`from a import b` gives `a` and, when
    `a.b` is a module, `a.b`)."""
    package = ".".join(path.relative_to(REPO_ROOT).with_suffix("").parts)
    if path.name == "__init__.py":
        package = package.removesuffix(".__init__")
    else:
        package = package.rpartition(".")[0]
    names: set[str] = set()
    for node in _import_nodes(ast.parse(path.read_text(), str(path)), module_level_only):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
            continue
        if node.level:  # relative: resolve against the importing package
            parts = package.split(".")
            base = ".".join(parts[: len(parts) - node.level + 1])
            source = f"{base}.{node.module}" if node.module else base
        else:
            source = node.module or ""
        names.add(source)
        names.update(f"{source}.{alias.name}" for alias in node.names)
    return names


def repo_files_imported_by(module: str) -> set[str]:
    """The repo files (posix, relative) that running `python -m module` imports.

    A module that is imported is followed through all its imports, function-level ones
    included (they run when the function is called). A package that is only the parent of an
    imported module (`serving` and `serving.model` for `serving.model.fast`) runs its
    `__init__`'s module-level code: only those imports are followed, unless something imports
    the package itself.
    """
    full: set[Path] = set()
    parent_only: set[Path] = set()
    queue = [module]
    while queue:
        name = queue.pop()
        parts = name.split(".")
        for depth in range(1, len(parts) + 1):
            path = module_file(".".join(parts[:depth]))
            explicit = depth == len(parts)
            if path is None or path in full or (not explicit and path in parent_only):
                continue
            (full if explicit else parent_only).add(path)
            queue.extend(imported_modules(path, module_level_only=not explicit))
    return {path.relative_to(REPO_ROOT).as_posix() for path in full | parent_only}


def stages() -> dict[str, dict]:
    return yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())["stages"]


def dep_paths(stage: dict) -> list[str]:
    return [next(iter(d)) if isinstance(d, dict) else d for d in stage.get("deps", [])]


def covered(path: str, deps: list[str]) -> bool:
    return any(PurePosixPath(path).is_relative_to(PurePosixPath(dep)) for dep in deps)


@pytest.mark.parametrize("name", sorted(stages()))
def test_every_imported_repo_file_is_a_dep_of_its_stage(name: str) -> None:
    stage = stages()[name]
    command = stage["cmd"].split()
    assert command[:2] == ["python", "-m"], f"stage {name}: not `python -m <module>`"
    module = command[2]
    files = repo_files_imported_by(module)
    assert module_file(module) is not None and len(files) > 1
    missing = sorted(f for f in files if not covered(f, dep_paths(stage)))
    assert not missing, f"dvc.yaml stage {name!r} does not list {', '.join(missing)} as deps"


def test_the_import_walk_follows_function_level_and_from_imports(tmp_path: Path) -> None:
    """The walker itself: register imports the fast path's runtime and its artifact format."""
    files = repo_files_imported_by("training.register")
    assert {"training/compile.py", "serving/model/fast.py", "serving/model/onnx_format.py"} <= files
    assert "training/passenger.py" in files  # `from training import passenger` in features
    assert {"training/__init__.py", "serving/__init__.py"} <= files
    assert not any(f.startswith(("tests/", "bench/")) for f in files)


def test_a_missing_dep_is_named() -> None:
    deps = ["training/train.py", "training"]
    assert covered("training/schema.py", deps)
    assert not covered("serving/model/fast.py", deps)
    assert not covered("training_extra/x.py", ["training"])
