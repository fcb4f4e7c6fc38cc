"""The accounts the service tests act as: alice and bob (users), vera (viewer), the admin."""

from __future__ import annotations

from digits_proto.base import Principal, Role

ALICE = Principal(username="alice", role=Role.USER)
BOB = Principal(username="bob", role=Role.USER)
VERA = Principal(username="vera", role=Role.VIEWER)
ADMIN = Principal(username="admin", role=Role.ADMIN)
