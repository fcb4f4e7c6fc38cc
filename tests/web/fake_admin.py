"""Fake routes for the account, admin and reference pages (account, users, audit, event
catalogue, a pretrained model, a classify-many job in progress), rendered with the real templates through the real page frame
and render functions, on rows shaped as the read model returns them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from litestar import Request, get
from litestar.response import Template

from digits_gateway import pages
from digits_gateway.controllers.catalogue import catalogue_view
from digits_gateway.pages import current_user
from digits_gateway.readmodel.queries import AuditEntry, TokenRow, UserRow
from digits_proto.inference import ManyStatus
from tests.web.fake_site import MODEL, MODELS, NOW

PRETRAINED = "20261127-130000-77aa"
_T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)

USERS = [
    UserRow(username=name, role=role, disabled=off, epoch=1, created=_T0, created_by=by)
    for name, role, off, by in [
        ("admin", "admin", False, ""),
        ("alice", "user", False, "admin"),
        ("bob", "user", False, "admin"),
        ("carol.long-username_42", "viewer", True, "admin"),
    ]
]
TOKENS = [
    TokenRow(id="tok-1", name="nightly training script", created=_T0 + timedelta(hours=2)),
    TokenRow(id="tok-2", name="ci", created=_T0),
]
AUDIT = [
    AuditEntry(
        stream="MODELS",
        seq=120 - i,
        occurred_at=_T0 + timedelta(minutes=90 - i * 7),
        actor=actor,
        type=kind,
        aggregate=aggregate,
        owner=owner,
        on_behalf=actor != owner and owner != "",
    )
    for i, (actor, kind, aggregate, owner) in enumerate(
        [
            ("admin", "ModelDeleted", "20261126-160000-dead", "bob"),
            ("alice", "ModelCreated", MODEL, "alice"),
            ("alice", "JobTagsChanged", MODEL, "alice"),
            ("bob", "DatasetCreated", "20261127-103000-c3d4", "bob"),
            ("admin", "UserCreated", "carol.long-username_42", ""),
        ]
    )
]
PRETRAINED_JOB: dict[str, Any] = {
    "id": PRETRAINED,
    "name": "resnet-18 (ImageNet, fine-tunable)",
    "status": "Done",
    "type": "pretrained_model",
    "username": "alice",
    "creation time": datetime.fromtimestamp(NOW - 3600, UTC).isoformat(),
    "submitted": NOW - 3600,
    "status_history": [["Initialized", NOW - 3600], ["Done", NOW - 3598]],
    "progress": 1.0,
    "directory": f"models/{PRETRAINED}",
    "job id": PRETRAINED,
    "framework": "mxnet",
    "image dimensions": [224, 224, 3],
    "image resize mode": "half_crop",
    "image_type": "color",
    "mean subtraction": "pixel",
    "labels": ["tench", "goldfish", "great white shark", "tiger shark", "hammerhead shark"],
    "has_labels": True,
    "snapshots": [30.0],
    "source": "model",
    "source_model_id": MODEL,
    "fine_tunable": True,
    "tags": ["imagenet"],
}


@get("/test/account", sync_to_thread=False)
def account(request: Request) -> Template:
    """As the real /account renders it, with two live tokens (the real route is registered
    here too, but it reads the accounts read model this stand-in has not got)."""
    return pages._page(
        "account.html",
        "Account",
        current_user(request),
        role="user",
        tokens=TOKENS,
        min_length=8,
        errors={},
    )


@get("/test/account-new-token", sync_to_thread=False)
def account_new_token(request: Request) -> Template:
    """The account page just after a token was created (shown this once, long and unbroken)."""
    token = "dgt_" + "Zx9" * 20
    return pages._page(
        "account.html",
        "Account",
        current_user(request),
        role="user",
        tokens=TOKENS,
        min_length=8,
        errors={},
        new_token={"id": "tok-3", "name": "laptop", "token": token},
    )


@get("/test/admin-users", sync_to_thread=False)
def admin_users(request: Request) -> Template:
    """As the real /admin/users renders it: four accounts, one disabled."""
    return pages._page(
        "admin_users.html",
        "Users",
        current_user(request),
        users=USERS,
        values={"role": "user"},
        errors={},
        min_length=8,
    )


@get("/admin/audit", sync_to_thread=False)
def audit(request: Request) -> Template:
    """As the real /admin/audit renders it, one action on another's job among them."""
    return pages._page(
        "admin/audit.html", "Audit", current_user(request), entries=AUDIT, actor="", job=""
    )


@get("/events/catalogue", sync_to_thread=False)
def catalogue(request: Request) -> Template:
    """The real catalogue, read from the committed AsyncAPI document."""
    return pages._page(
        "catalogue.html", "Event catalogue", current_user(request), view=catalogue_view()
    )


@get(f"/pretrained_models/{PRETRAINED}", sync_to_thread=False)
def pretrained(request: Request) -> Template:
    """A pretrained model made from a trained model's snapshot."""
    return pages.pretrained_page(dict(PRETRAINED_JOB), current_user(request))


MANY_RUN = "20261127-113000-3f2a"  # a run id as the real route accepts it
MANY_STATUS = ManyStatus(run_id=MANY_RUN, job_id=MODEL, status="Running", done=312, total=1250)
MANY_URL = f"/models/images/classification/classify_many/{MANY_RUN}"


@get(MANY_URL, sync_to_thread=False)
def many_progress(request: Request) -> Template:
    """A classify-many job still running, as the real run route renders it."""
    status = msgspec.to_builtins(MANY_STATUS)
    return pages.classify_many_progress_page(dict(MODELS[MODEL]), status, current_user(request))


@get(MANY_URL + ".json", sync_to_thread=False)
def many_progress_json() -> dict[str, Any]:
    """What the page polls: the status, still running (the real route's shape)."""
    return msgspec.to_builtins(MANY_STATUS) | {"result": None}


ROUTES = [
    account,
    account_new_token,
    admin_users,
    audit,
    catalogue,
    pretrained,
    many_progress,
    many_progress_json,
]
