"""Who may do what to a dataset, decided here whatever the gateway checked (pure, no I/O).

Any principal reads; users and admins create; a user changes only the datasets they own, an
admin any (the event's `actor` then differs from its owner). A command without a principal is
refused: only the gateway sends commands on the sealed bus, and it always says who asks.
"""

from __future__ import annotations

from digits_datasets.errors import NoPrincipal, NotOwner, ReadOnly
from digits_proto.base import Principal


def reader(principal: Principal | None) -> Principal:
    """Who asks, for a read: any signed-in principal."""
    if principal is None or not principal.username:  # nameless: would own pre-account jobs
        raise NoPrincipal()
    return principal


def writer(principal: Principal | None) -> Principal:
    """Who asks, for a state change: a user or an admin, never a viewer."""
    who = reader(principal)
    if not who.may_create:
        raise ReadOnly(who.username)
    return who


def actor(who: Principal, owner: str, verb: str) -> str:
    """The actor's name when `who` may `verb` a dataset owned by `owner`; refused otherwise."""
    if not who.may_change(owner):
        raise NotOwner(verb, owner)
    return who.username
