"""The error tree in errors.py's docstring is the whole tree: every CouncilError subclass in
the package is drawn there, under its real parent, and one defined elsewhere says where."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import council
from council import errors
from council.errors import CouncilError

# `python -m council` runs the CLI on import; the server's static files are not Python.
SKIP = ("council.__main__", "council.server.static")
BRANCH = re.compile(r"^(?P<indent>[ │]*)[├└]── (?P<name>\w+)(?P<rest>.*)$")


def every_subclass() -> dict[str, type[CouncilError]]:
    for module in pkgutil.walk_packages(council.__path__, "council."):
        if not module.name.startswith(SKIP):
            importlib.import_module(module.name)
    found: dict[str, type[CouncilError]] = {}
    todo = [CouncilError]
    while todo:
        for sub in todo.pop().__subclasses__():
            found[sub.__name__] = sub
            todo.append(sub)
    return found


def drawn_tree() -> dict[str, tuple[str, str]]:
    """Each class drawn in the docstring: (its parent in the drawing, the rest of its line)."""
    doc = errors.__doc__ or ""
    assert "    CouncilError\n" in doc
    parents = ["CouncilError"]
    drawn: dict[str, tuple[str, str]] = {}
    for line in doc.splitlines():
        m = BRANCH.match(line)
        if m is None:
            continue
        depth = (len(m["indent"]) - 4) // 4
        parents[depth + 1 :] = [m["name"]]
        drawn[m["name"]] = (parents[depth], m["rest"])
    return drawn


def test_every_council_error_is_drawn_in_the_tree_under_its_parent() -> None:
    found = every_subclass()
    drawn = drawn_tree()
    missing = sorted(set(found) - set(drawn))
    assert not missing, f"add these to the tree in errors.py's docstring: {missing}"
    stale = sorted(set(drawn) - set(found))
    assert not stale, f"the tree in errors.py names classes that do not exist: {stale}"
    for name, cls in found.items():
        parent, rest = drawn[name]
        assert cls.__bases__[0].__name__ == parent, (name, parent)
        if cls.__module__ != "council.errors":
            where = Path(*cls.__module__.split(".")[1:]).with_suffix(".py").as_posix()
            assert f"lives in {where}" in rest, f"{name} is drawn without 'lives in {where}'"
