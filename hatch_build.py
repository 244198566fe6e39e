"""hatchling's build hook: how the single file starlite.py becomes an installed package."""

from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class CustomBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    """Package starlite.py for a wheel; leave it where it is for an editable install."""

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        """A wheel installs starlite.py as the package starlite/__init__.py with py.typed beside
        it, since a single-module wheel cannot carry py.typed (PEP 561). An editable install
        gets no copy: dev-mode-dirs puts the repository on sys.path, where the working
        starlite.py is imported."""
        if version == "standard":
            build_data["force_include"]["starlite.py"] = "starlite/__init__.py"
            build_data["force_include"]["py.typed"] = "starlite/py.typed"
