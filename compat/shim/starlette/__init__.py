"""A stand-in ``starlette`` package that forwards every ``starlette.*`` name to starlite.

Only `compat/run.py` puts it on the path, to run Starlette's own test suite against starlite.
Each ``starlette.X`` module is made on import by the finder below: reading a name reads starlite's
(``Starlette`` is ``Starlite``), and setting one (``monkeypatch.setattr``, ``mock.patch``) sets it
where starlite looks it up, so a patch reaches the code under test. A name starlite lacks is a
stand-in that fails only the test that uses it, never the import of a whole test file.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import tempfile
from types import ModuleType
from typing import Any

import starlite

# Starlette's names that starlite spells differently, wherever they are imported from.
RENAMED = {
    "Starlette": "Starlite",
    # starlette._utils: helpers of its private modules that its tests import.
    "is_async_callable": "_is_async_callable",
    "get_route_path": "_route_path",
}

# Names Starlette's modules import from elsewhere, and that its tests patch through the Starlette
# module: the patch must land on the object starlite reads the name from.
REDIRECTED: dict[tuple[str, str], ModuleType] = {
    ("starlette.formparsers", "SpooledTemporaryFile"): tempfile,
}

# Starlette modules whose names are the attributes of one starlite object: a name the object
# lacks is missing from the module, as in Starlette, not a stand-in.
MODULE_OBJECTS = {"starlette.status": "status"}


class _Missing(type):
    """The type of a stand-in for a name starlite lacks: any use of it fails with its name."""

    def __getattr__(cls, attribute: str) -> Any:
        raise AttributeError(f"starlite has no {cls.__qualname__} (so no .{attribute})")

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"starlite has no {cls.__qualname__}")


def _stand_in(module: str, name: str) -> type:
    """A class that fails when used; a real Warning subclass for a warning, since pytest reads
    `filterwarnings` marks when it collects a file."""
    if name.endswith("Warning"):
        return type(name, (DeprecationWarning,), {"__module__": module})
    return _Missing(f"{module}.{name}", (), {"__module__": module})


class ForwardingModule(ModuleType):
    """A ``starlette.X`` module whose names are starlite's."""

    # Names deleted through this module, which read as missing until set again: `mock.patch`
    # undoes a patch of a name it did not find in the module's __dict__ by deleting it, then
    # setting the original back only if the name is gone.
    _deleted: set[str]

    def _target(self, name: str) -> tuple[Any, str]:
        """Where `name` lives: an object and the attribute name on it."""
        redirected = REDIRECTED.get((self.__name__, name))
        if redirected is not None:
            return redirected, name
        if self.__name__ in MODULE_OBJECTS:
            return getattr(starlite, MODULE_OBJECTS[self.__name__]), name
        return starlite, RENAMED.get(name, name)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in self.__dict__.get("_deleted", ()):
            raise AttributeError(name)
        target, attribute = self._target(name)
        try:
            return getattr(target, attribute)
        except AttributeError:
            if self.__name__ == "starlette" and not name.startswith("_"):
                # `from starlette import convertors`: let the import system find the submodule.
                raise
            if self.__name__ in MODULE_OBJECTS:
                message = f"module {self.__name__!r} has no attribute {name!r}"
                raise AttributeError(message) from None
            return _stand_in(self.__name__, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("__") or isinstance(value, ModuleType):
            super().__setattr__(name, value)
        else:
            self.__dict__.setdefault("_deleted", set()).discard(name)
            setattr(*self._target(name), value)

    def __delattr__(self, name: str) -> None:
        if name in self.__dict__:
            super().__delattr__(name)
        else:
            delattr(*self._target(name))
            self.__dict__.setdefault("_deleted", set()).add(name)


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Makes every ``starlette.*`` submodule a ForwardingModule; each one is also a package, so
    that ``starlette.middleware.cors`` imports."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if not fullname.startswith("starlette."):
            return None
        return importlib.machinery.ModuleSpec(fullname, self, is_package=True)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return ForwardingModule(spec.name)

    def exec_module(self, module: ModuleType) -> None:
        module.__path__ = []


sys.meta_path.insert(0, _Finder())
# This package itself forwards too: `from starlette import status`.
sys.modules[__name__].__class__ = ForwardingModule
