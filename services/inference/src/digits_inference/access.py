"""Who may classify, decided here whatever the gateway checked (pure, no I/O).

Any principal downloads any model (a read: the lab sees every job); classifying (one image,
many, top-N) is for users and admins with any model, not for viewers, as the gateway's table
says: a viewer reads and changes nothing, and a classification spends the lab's devices. A command without a principal is refused: only the gateway sends commands
on the sealed bus, and it always says who asks.
"""

from __future__ import annotations

from digits_inference.errors import NoPrincipal, ReadOnly
from digits_proto.base import Principal


def reader(principal: Principal | None) -> Principal:
    """Who asks, for a download: any signed-in principal."""
    if principal is None or not principal.username:  # nameless: would own pre-account jobs
        raise NoPrincipal()
    return principal


def runner(principal: Principal | None) -> Principal:
    """Who asks, to classify: a user or an admin, never a viewer."""
    who = reader(principal)
    if not who.may_create:
        raise ReadOnly(who.username)
    return who
