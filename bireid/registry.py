"""``Registry``: names -> entries (builders or records) of one kind, e.g. backbones, methods, data sets.

A registry imports nothing: the package that defines the entries registers them when it is imported (as
``bireid/modeling/__init__.py`` imports its backbones), so asking a registry never triggers an import.
Unknown names fail with the close matches (``difflib``) and every known name; a name registered twice is an
error.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class UnknownNameError(KeyError):
    """A name no registry entry has (a ``KeyError`` whose message prints without quotes)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class Registry(Generic[T]):
    """Entries of one ``kind`` ("method", "data set", ...) by name.

    ``error`` is the exception type raised for unknown names (its message names the kind, the name, the close
    matches and every known name); ``fold_case`` makes names case-insensitive (stored and looked up lower-case).
    """

    def __init__(self, kind: str, error: type[Exception] = UnknownNameError, fold_case: bool = False) -> None:
        self.kind = kind
        self.error = error
        self.fold_case = fold_case
        self._entries: dict[str, T] = {}

    def _key(self, name: str) -> str:
        return str(name).lower() if self.fold_case else str(name)

    def add(self, name: str, entry: T) -> T:
        """Register ``entry`` under ``name``; a name already taken raises ``ValueError``."""
        key = self._key(name)
        if key in self._entries:
            raise ValueError(f"{self.kind} '{key}' is already registered")
        self._entries[key] = entry
        return entry

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form of :meth:`add`: ``@REG.register("name")`` above a builder."""
        return lambda entry: self.add(name, entry)

    def get(self, name: str) -> T:
        """The entry called ``name``; an unknown name raises ``self.error`` with close matches."""
        key = self._key(name)
        if key not in self._entries:
            raise self.error(self.unknown_message(name))
        return self._entries[key]

    def unknown_message(self, name: str) -> str:
        close = difflib.get_close_matches(self._key(name), list(self._entries), n=3)
        hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
        return f"unknown {self.kind} '{name}'{hint}; known: {', '.join(self.names()) or 'none'}"

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._key(name) in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)

    def values(self) -> list[T]:
        """The entries in name order."""
        return [self._entries[n] for n in self.names()]

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self.names())})"
