"""aiogram with its Telegram types' validators built on first use instead of all at import.

aiogram.types ends by building a pydantic validator for every one of its ~440 Bot API types (aiogram
issue #1513): ~105 MB resident and 5 s of start-up, when a bot like ours meets a few dozen of them (an
Update, a Message, a CallbackQuery …: ~10 MB). `load()` imports aiogram with that loop skipped, then gives
each types module the names the loop resolves forward references with (aiogram imports them only for type
checkers), so that pydantic builds any type correctly the first time it is used, whoever uses it first: a
method, a generic `Response[T]`, a nested field. `install()` (run by the entry points that start the
service and the demo, bot/cli/service.py and bot/cli/demo.py) makes the first `import aiogram` anywhere in
the process go through `load()`. tests/test_lazy_aiogram.py builds every type
that way."""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from pydantic import BaseModel

TYPES_PACKAGE = "aiogram.types"


def _share_names(namespace: dict[str, Any]) -> None:
    for name, module in list(sys.modules.items()):
        if name.startswith(TYPES_PACKAGE + ".") and module is not None:
            for key, value in namespace.items():
                module.__dict__.setdefault(key, value)


def load() -> None:
    """Import aiogram as above; a no-op when it is imported already (then its types were built eagerly)."""
    if "aiogram" in sys.modules:
        return
    eager = BaseModel.__dict__["model_rebuild"]
    namespace: dict[str, Any] = {}

    def defer(cls: type[BaseModel], *, _types_namespace: dict[str, Any] | None = None, **kwargs: Any) -> bool | None:
        if not _types_namespace or not cls.__module__.startswith(TYPES_PACKAGE + "."):
            return eager.__func__(cls, _types_namespace=_types_namespace, **kwargs)  # type: ignore[no-any-return]
        namespace.update(_types_namespace)
        return None

    BaseModel.model_rebuild = classmethod(defer)  # type: ignore[assignment,method-assign]
    try:
        import aiogram  # noqa: F401
    finally:
        BaseModel.model_rebuild = eager  # type: ignore[method-assign]
    _share_names(namespace)  # after the whole import: aiogram's methods then build on first use too


class _Imported(importlib.abc.Loader):
    """Hands the import system the module `load()` has just imported."""

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return sys.modules[spec.name]

    def exec_module(self, module: ModuleType) -> None:
        return None


class _FirstImport(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None,
                  ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "aiogram":
            return None
        uninstall()
        load()
        return importlib.util.spec_from_loader(fullname, _Imported())


_hook = _FirstImport()


def install() -> None:
    if "aiogram" not in sys.modules and _hook not in sys.meta_path:
        sys.meta_path.insert(0, _hook)


def uninstall() -> None:
    if _hook in sys.meta_path:
        sys.meta_path.remove(_hook)
