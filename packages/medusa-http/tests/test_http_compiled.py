"""The request path as installed is compiled by mypyc (the hatch-mypyc hook of medusa-http's
``pyproject.toml``): these tests run against the modules a user gets, so the rest of the
suite proves the compiled code, and a build that silently fell back to pure Python (the hook
removed or its list emptied) fails here rather than only in the benchmark."""

from __future__ import annotations

import importlib
import importlib.machinery
import tomllib
from pathlib import Path

import pytest

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def _compiled_sources() -> list[str]:
    """The module names the build hook compiles, from its ``include`` list."""
    with PYPROJECT.open("rb") as file:
        hook = tomllib.load(file)["tool"]["hatch"]["build"]["targets"]["wheel"]["hooks"]["mypyc"]
    names = []
    for path in hook["include"]:
        relative = Path(path).relative_to("src").with_suffix("")
        names.append(".".join(relative.parts))
    return names


def test_the_request_path_is_compiled_by_the_build() -> None:
    assert set(_compiled_sources()) >= {
        "medusa.http.connection",
        "medusa.http.dispatch",
        "medusa.http.events",
        "medusa.http.request",
    }


@pytest.mark.parametrize("name", _compiled_sources())
def test_the_installed_module_is_the_compiled_one(name: str) -> None:
    module = importlib.import_module(name)
    path = str(module.__file__)
    assert path.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)), (
        f"{name} is imported from {path}: the install did not compile it (an environment "
        "made before medusa-http's build compiled its request path, or one installed with "
        "HATCH_BUILD_NO_HOOKS): `hatch env prune`, then `hatch run test` reinstalls it"
    )
