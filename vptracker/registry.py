"""The one registry: a name -> what implements it, for tasks, datasets, model families, SOT
protocols, MOT benchmarks and report rows.

The CLI's choices and the report's columns are read from a registry, so adding a dataset, task,
family or metric is its file plus one registration. A second registration of a taken name is an
error, never a silent overwrite (the same entry registered again is fine: a module imported twice);
an unknown name is an :class:`~vptracker.config.UnknownName` (a ``ConfigError``: one line, exit 2
at the CLI; and a ``KeyError``) naming the nearest registered name.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Generic, TypeVar

from vptracker.config import unknown_name

T = TypeVar("T")
_MISSING = object()


def _same_entry(old, new) -> bool:
    """Two registrations of one object (or one function re-created by a re-import)."""
    return old is new or (getattr(old, "__module__", None), getattr(old, "__qualname__", None)) == \
        (getattr(new, "__module__", object()), getattr(new, "__qualname__", object()))


class Registry(Mapping, Generic[T]):
    """``name -> entry`` that refuses a taken name and names the nearest one for an unknown name."""

    def __init__(self, what: str):
        self.what = what
        self._entries: dict[str, T] = {}

    def add(self, name: str, entry: T) -> T:
        taken = self._entries.get(name, _MISSING)
        if taken is not _MISSING and not _same_entry(taken, entry):
            where = f"{getattr(taken, '__module__', '')}.{getattr(taken, '__qualname__', '')}".strip(".")
            raise ValueError(f"{self.what} {name!r} is already registered ({where or repr(taken)}); "
                             "choose another name")
        self._entries[name] = entry
        return entry

    def register(self, *names: str) -> Callable[[T], T]:
        """Decorator form of :meth:`add` (every name in ``names``)."""
        def deco(entry: T) -> T:
            for name in names:
                self.add(name, entry)
            return entry
        return deco

    def get(self, name: str, default=_MISSING) -> T:
        if name in self._entries:
            return self._entries[name]
        if default is not _MISSING:
            return default
        raise unknown_name(self.what, name, self._entries)

    __getitem__ = get

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)
