"""The `digits` verbs for users of a running system, over `/api/v1` with an API token (never
NATS): login, datasets, train, jobs, classify, download, events, demo."""

from __future__ import annotations

import argparse

from digits_cli.commands import account, classify, datasets, demo, events, jobs, train
from digits_cli.commands._common import run_verb

__all__ = ["register", "run"]


def register(verbs: argparse._SubParsersAction) -> None:
    """Add every user verb to the `digits` parser."""
    for module in (account, datasets, train, jobs, classify, events, demo):
        module.register(verbs)


def run(args: argparse.Namespace) -> int | None:
    """Run the parsed user verb; None when `args` is not one of them."""
    verb = getattr(args, "verb_fn", None)
    return None if verb is None else run_verb(verb, args)
