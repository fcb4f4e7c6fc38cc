"""Every route of the gateway × {anonymous, viewer, other user, owner, admin} → the expected answer.

The routes come from the app's own route table, so a new route cannot be forgotten: it fails
here until access.POLICY has a row for it (and until then the guard refuses it, fail closed).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from digits_gateway import access
from digits_gateway.access import Access
from digits_gateway.app import create_app
from tests.gateway.accounts import sign_in, with_csrf
from tests.gateway.conftest import make_settings
from tests.gateway.fake_backend import FakeBackend
from tests.gateway.helpers import until

ROLES = ("anonymous", "viewer", "other", "owner", "admin")
ACCOUNT = {"viewer": "vera", "other": "bob", "owner": "alice", "admin": "admin"}
SKIPPED_METHODS = {"OPTIONS", "HEAD"}
SIGN_OUT = {("/logout", "POST"), ("/api/v1/session", "DELETE")}  # then sign in again
# What each rule answers each caller: "401", "403", or "ok" (anything but 401/403/5xx: a 400
# for the empty body, a 404 for a job already deleted by the owner, a 302 are all "let in").
EXPECTED: dict[Access, dict[str, str]] = {
    Access.PUBLIC: dict.fromkeys(ROLES, "ok"),
    Access.SIGNED_IN: {
        "anonymous": "401",
        "viewer": "ok",
        "other": "ok",
        "owner": "ok",
        "admin": "ok",
    },
    Access.CREATE: {
        "anonymous": "401",
        "viewer": "403",
        "other": "ok",
        "owner": "ok",
        "admin": "ok",
    },
    Access.OWNER: {
        "anonymous": "401",
        "viewer": "403",
        "other": "403",
        "owner": "ok",
        "admin": "ok",
    },
    Access.ADMIN: {
        "anonymous": "401",
        "viewer": "403",
        "other": "403",
        "owner": "403",
        "admin": "ok",
    },
}
# Values for path parameters other than job ids.
PARAMS = {
    "file_path": "css/app.css",
    "name": "train.txt",
    "db": "train",
    "index": "0",
    "run_id": "20260101-000000-abcd",
    "action": "download",
    "token_id": "nope",
    "username": "bob",
    "path": "openapi.json",
}


def app_routes() -> list[tuple[str, str]]:
    """(path template, method) of every route the app serves."""
    app = create_app(make_settings("nats://127.0.0.1:1", Path("/nonexistent")))
    return sorted(
        (route.path_format, method)
        for route in app.routes
        for method in getattr(route, "methods", ())
        if method not in SKIPPED_METHODS
    )


def test_every_route_has_an_access_rule() -> None:
    """A route missing from access.POLICY fails here (the guard would refuse it with 403)."""
    missing = [f"{m} {p}" for p, m in app_routes() if access.rule_for(m, p) is None]
    assert not missing, f"add these to digits_gateway.access.POLICY: {missing}"


def test_every_access_rule_names_a_route() -> None:
    """A rule for a route that no longer exists is a stale row (or a typo hiding a real one)."""
    served = set(app_routes())
    stale = [
        f"{m} {p}" for p, methods in access.POLICY.items() for m in methods if (p, m) not in served
    ]
    assert not stale, f"remove or fix these rows of access.POLICY: {stale}"


# Reviewed by hand, independently of access.POLICY: what the issue lets in without an account,
# and the state-changing routes a viewer may still call (their own session, password and tokens,
# and computations that change nothing).
ANONYMOUS_OK = {
    ("/health", "GET"),
    ("/ready", "GET"),  # the probe a load balancer or the launcher asks, like /health
    ("/metrics", "GET"),
    ("/static/{file_path}", "GET"),
    ("/login", "GET"),
    ("/login", "POST"),
    ("/logout", "POST"),
    ("/api/v1/session", "POST"),
    ("/api/v1/session", "DELETE"),
}
VIEWER_MAY_POST = {
    ("/account/password", "POST"),
    ("/account/tokens", "POST"),
    ("/account/tokens/{token_id}/revoke", "POST"),
    ("/api/v1/tokens", "POST"),
    ("/api/v1/tokens/{token_id}", "DELETE"),
    ("/api/v1/users/me/password", "PUT"),
    ("/datasets/images/resize-example", "POST"),
    ("/models/visualize-lr", "POST"),
    ("/models/customize", "POST"),
    ("/models/{job_id}/{action}", "POST"),
}


def test_the_table_lets_in_only_what_the_issue_allows() -> None:
    """Anonymous: only sign-in, static files and health; a viewer's writes: only the reviewed
    list. A new write route marked SIGNED_IN or PUBLIC fails here until it is reviewed."""
    routes = app_routes()
    public = {(p, m) for p, m in routes if access.rule_for(m, p) is Access.PUBLIC}
    assert public == ANONYMOUS_OK
    viewer_writes = {
        (p, m)
        for p, m in routes
        if m not in ("GET", "HEAD", "OPTIONS") and access.rule_for(m, p) is Access.SIGNED_IN
    }
    assert viewer_writes == VIEWER_MAY_POST - ANONYMOUS_OK


@contextlib.asynccontextmanager
async def clients(url: str) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    """One client per role, each signed in with its own password (anonymous: none)."""
    async with contextlib.AsyncExitStack() as stack:
        out: dict[str, httpx.AsyncClient] = {}
        for role in ROLES:
            c = with_csrf(await stack.enter_async_context(httpx.AsyncClient(base_url=url)))
            if role != "anonymous":
                await sign_in(c, ACCOUNT[role])
            else:
                await c.get("/login")  # a CSRF cookie, as a browser would have
            out[role] = c
        yield out


async def alice_jobs(
    alice: httpx.AsyncClient, backend: FakeBackend, model: bool = True
) -> dict[str, str]:
    """Alice's dataset, built, and her model of it (still running); without the model, the
    dataset is left building (abortable, and deletable: no model depends on it)."""
    r = await alice.post("/api/v1/datasets", json={"name": "pets", "folder_train": "/data/pets"})
    assert r.status_code == 202, r.text
    dataset = r.json()["id"]
    if not model:
        return {"dataset": dataset, "model": ""}
    await backend.build(dataset)

    async def built() -> bool:
        return (await alice.get(f"/datasets/{dataset}/status")).json()["status"] == "Done"

    await until(built)
    r = await alice.post(
        "/api/v1/models", json={"name": "net", "dataset_id": dataset, "network": "lenet"}
    )
    assert r.status_code == 202, r.text
    return {"dataset": dataset, "model": r.json()["id"]}


def url_for(template: str, jobs: dict[str, str]) -> str:
    """The template with its parameters filled: job ids from alice's jobs."""
    kind = "dataset" if "dataset" in template else "model"
    path = template.replace("{job_id}", jobs[kind])
    for name, value in PARAMS.items():
        path = path.replace("{" + name + "}", value)
    return path


async def call(c: httpx.AsyncClient, method: str, path: str) -> int:
    """The status only (an SSE stream is left unread); asks for JSON so a 401 is not a redirect."""
    body = {"json": {}} if path.startswith("/api/") else {"data": {}}
    if method in ("GET", "DELETE"):
        body = {}
    headers = {"Accept": "application/json"}
    async with c.stream(method, path, headers=headers, **body) as r:
        return r.status_code


def verdict(rule: Access, status: int) -> str:
    if status == 401 and rule is Access.PUBLIC:
        return "ok"  # the guard lets everyone in; a sign-in route refuses a wrong password
    if status in (401, 403):
        return str(status)
    return "5xx" if status >= 500 and status != 503 else "ok"


@pytest.mark.timeout(300)
async def test_the_route_matrix(live_url: str, backend: FakeBackend) -> None:
    """Each route × caller answers as the table says: anonymous 401, viewers read only, other
    users kept off alice's jobs, admins everywhere; no route answers a 500."""
    wrong: list[str] = []
    async with clients(live_url) as by_role:
        shared = await alice_jobs(by_role["owner"], backend)
        for template, method in app_routes():
            rule = access.rule_for(method, template)
            assert rule is not None
            for role in ROLES:
                jobs = shared
                if rule is Access.OWNER and role in ("owner", "admin"):
                    # a job of its own: the change may delete it, or stop it
                    jobs = await alice_jobs(by_role["owner"], backend, "dataset" not in template)
                status = await call(by_role[role], method, url_for(template, jobs))
                if (template, method) in SIGN_OUT and role != "anonymous":
                    await sign_in(by_role[role], ACCOUNT[role])
                if verdict(rule, status) != EXPECTED[rule][role]:
                    wrong.append(
                        f"{role:9} {method:6} {template}: {status}, wanted {EXPECTED[rule][role]}"
                    )
    assert not wrong, "\n".join(wrong)


async def test_an_anonymous_browser_is_sent_to_sign_in_and_back(client) -> None:
    """HTML without a session: 302 to /login?next=<where it was going>; JSON: 401."""
    client.cookies.clear()
    r = await client.get(
        "/models/images/classification/new?dataset=x", headers={"Accept": "text/html"}
    )
    assert r.status_code == 302
    assert r.headers["location"] == "/login?next=/models/images/classification/new%3Fdataset%3Dx"
    r = await client.get("/index.json")
    assert r.status_code == 401 and r.json()["error"]["type"] == "Unauthorized"


async def test_a_route_without_a_rule_is_refused(client, monkeypatch) -> None:
    """Fail closed: drop /index.json's row and even the signed-in owner gets 403 naming why."""
    assert (await client.get("/index.json")).status_code == 200
    monkeypatch.delitem(access.POLICY, "/index.json")
    r = await client.get("/index.json")
    assert r.status_code == 403 and "no access rule" in r.json()["error"]["message"]


async def test_a_viewer_is_told_why(client) -> None:
    """A viewer's state change is a 403 naming the role."""
    await sign_in(client, "vera")
    r = await client.post("/api/v1/datasets", json={"name": "p", "folder_train": "/d"})
    assert r.status_code == 403 and "viewer" in r.json()["error"]["message"]
