"""The ``starlette`` package that Starlette's own test suite imports when compat/run.py runs it.

It is what ``starlite.install_as_starlette()`` makes, every ``starlette.*`` module reading its
names from starlite, with one addition for tests: setting a name (``monkeypatch.setattr``,
``mock.patch``) sets it where starlite looks it up, so that a patch reaches the code under test.
It is a package on the path rather than a call to install_as_starlette() because pytest imports
``starlette`` (for a warning filter of Starlette's settings) before any plugin could make that call.
"""

from __future__ import annotations

import sys
import tempfile
from types import ModuleType
from typing import Any

import starlite

# Names Starlette's modules import from elsewhere, and that its tests patch through the Starlette
# module: the patch must land on the object starlite reads the name from.
REDIRECTED: dict[tuple[str, str], ModuleType] = {
    ("starlette.formparsers", "SpooledTemporaryFile"): tempfile,
}


class PatchableModule(starlite._StarletteModule):
    """A ``starlette.X`` module of install_as_starlette() whose names can be patched."""

    # Names deleted through this module, which read as missing until set again: `mock.patch`
    # undoes a patch of a name it did not find in the module's __dict__ by deleting it, then
    # setting the original back only if the name is gone.
    _deleted: set[str]

    def _target(self, name: str) -> Any:
        """The object that holds `name` where starlite reads it."""
        return REDIRECTED.get((self.__name__, name), starlite)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in self.__dict__.get("_deleted", ()):
            raise AttributeError(name)
        if (self.__name__, name) in REDIRECTED:
            return getattr(self._target(name), name)
        return super().__getattr__(name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("__") or isinstance(value, ModuleType) or name in self.__dict__:
            super().__setattr__(name, value)
        else:
            self.__dict__.setdefault("_deleted", set()).discard(name)
            setattr(self._target(name), name, value)

    def __delattr__(self, name: str) -> None:
        if name in self.__dict__:
            super().__delattr__(name)
        else:
            delattr(self._target(name), name)
            self.__dict__.setdefault("_deleted", set()).add(name)


class _PatchableFinder(starlite._StarletteFinder):
    """install_as_starlette()'s finder, making patchable modules."""

    def create_module(self, spec: Any) -> ModuleType:
        module = super().create_module(spec)
        if type(module) is starlite._StarletteModule:
            module.__class__ = PatchableModule
        return module


sys.meta_path.insert(0, _PatchableFinder())
# This package is `starlette` itself: it becomes what the finder would have made of it.
_package = sys.modules[__name__]
_package.__class__ = PatchableModule
_package.__dict__.update(starlite._STARLETTE_MODULES[__name__])
