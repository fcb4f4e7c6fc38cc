"""Who may classify, decided here whatever the gateway checked (pure, no I/O).

Any principal classifies one image with any model and downloads it (reads: the lab sees every
job); classify many and top-N, which run as jobs over many server files, are for users and
admins, not viewers. A command without a principal is refused: only the gateway sends commands
on the sealed bus, and it always says who asks.
"""

from __future__ import annotations

from digits_inference.errors import NoPrincipal, ReadOnly
from digits_proto.base import Principal


def reader(principal: Principal | None) -> Principal:
    """Who asks, for classify one or a download: any signed-in principal."""
    if principal is None or not principal.username:  # nameless: would own pre-account jobs
        raise NoPrincipal()
    return principal


def runner(principal: Principal | None) -> Principal:
    """Who asks, for a classify-many job: a user or an admin, never a viewer."""
    who = reader(principal)
    if not who.may_create:
        raise ReadOnly(who.username)
    return who
