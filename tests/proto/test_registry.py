"""`ALL_MESSAGES` holds every message type `digits_proto` defines, so it can never fall behind.

The rule: a message is a concrete (subclass-less) subclass of `Command`, `Event` or `Reply`, in
any module of the package. The shapes inside messages (`DatasetSpec`, `BlobRef`, ...) and the
JSON documents kept in the Object Store (`ManyStatus`, `ManyResult`, `Visualizations`) are plain
Structs: they reach the catalogue through the messages that carry or name them.
"""

from __future__ import annotations

import importlib
import pkgutil

import digits_proto
from digits_proto.base import Command, Event, Reply


def _subclasses(base: type) -> set[type]:
    found: set[type] = set()
    for sub in base.__subclasses__():
        found |= {sub, *_subclasses(sub)}
    return found


def defined_messages() -> set[type]:
    """Every concrete message class defined in any module of digits_proto."""
    for module in pkgutil.walk_packages(digits_proto.__path__, "digits_proto."):
        if not module.name.endswith(".__main__"):  # a command, not a module of definitions
            importlib.import_module(module.name)
    classes = set().union(*(_subclasses(b) for b in (Command, Event, Reply)))
    return {
        c for c in classes if c.__module__.startswith("digits_proto.") and not c.__subclasses__()
    }


def test_every_message_type_is_in_all_messages() -> None:
    """A message defined in proto but missing from the registry is named."""
    missing = sorted(c.__qualname__ for c in defined_messages() - set(digits_proto.ALL_MESSAGES))
    assert not missing, f"add to digits_proto.ALL_MESSAGES: {', '.join(missing)}"


def test_the_registry_holds_only_messages_once_each() -> None:
    """No duplicate and nothing in the registry that is not a concrete message."""
    registry = list(digits_proto.ALL_MESSAGES)
    assert len(registry) == len(set(registry))
    assert set(registry) <= defined_messages()


def test_a_forgotten_message_would_be_named(monkeypatch) -> None:
    """The walk sees a message that a module defines (here one added at runtime)."""

    class ExampleHappened(Event, frozen=True, kw_only=True, tag="test.ExampleHappened"):
        """Defined here as if in a proto module."""

    monkeypatch.setattr(ExampleHappened, "__module__", "digits_proto.models")
    assert ExampleHappened in defined_messages() - set(digits_proto.ALL_MESSAGES)
