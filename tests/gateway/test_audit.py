"""The audit view: every event a person caused, from the streams, newest first, admins only."""

from __future__ import annotations

from digits_gateway.app import create_app
from tests.gateway.accounts import another_client, sign_in
from tests.gateway.conftest import running, wait_ready
from tests.gateway.helpers import until


async def test_the_audit_lists_who_did_what_newest_first(client) -> None:
    """alice creates and renames her dataset, the admin deletes it and changes bob's role:
    the audit lists each with its actor, the admin's acts on others' marked as such;
    filters by actor and by job; viewers and users get 403."""
    r = await client.post("/api/v1/datasets", json={"name": "pets", "folder_train": "/data/pets"})
    dataset = r.json()["id"]
    assert (await client.put(f"/jobs/{dataset}", data={"job_name": "cats"})).status_code == 200
    async with another_client(client) as admin:
        await sign_in(admin, "admin")
        assert (await admin.delete(f"/datasets/{dataset}")).status_code == 200
        r = await admin.patch("/api/v1/users/bob", json={"role": "viewer"})
        assert r.status_code == 200, r.text

        async def entries(**query: str) -> list[dict[str, object]]:
            r = await admin.get("/api/v1/audit", params=query)
            assert r.status_code == 200, r.text
            return r.json()["entries"]

        async def complete() -> list[dict[str, object]]:
            found = await entries(job=dataset)
            return found if len(found) == 3 else []

        on_job = await until(complete)
        assert [(e["actor"], e["type"], e["owner"], e["on_behalf"]) for e in on_job] == [
            ("admin", "DatasetDeleted", "alice", True),
            ("alice", "DatasetEdited", "alice", False),
            ("alice", "DatasetCreated", "alice", False),
        ]
        by_admin = await entries(actor="admin")
        assert {(e["type"], e["aggregate"]) for e in by_admin} >= {
            ("DatasetDeleted", dataset),
            ("RoleChanged", "bob"),
        }
        assert all(e["actor"] == "admin" for e in by_admin)
        times = [e["occurred_at"] for e in await entries()]
        assert times == sorted(times, reverse=True)
        page = await admin.get("/admin/audit", params={"job": dataset})
        assert page.status_code == 200 and "acted on another" in page.text
        assert page.text.count('class="on-behalf"') == 1
        assert (await admin.get("/api/v1/audit", params={"limit": "0"})).status_code == 400
    assert (await client.get("/api/v1/audit")).status_code == 403
    assert (await client.get("/admin/audit", headers={"Accept": "text/html"})).status_code == 403


async def test_the_audit_is_rebuilt_from_the_streams(settings, backend, tmp_path) -> None:
    """Delete the DuckDB file: the restarted gateway lists the same audit rows (it is a
    projection of the streams, so nothing can be missing from it)."""
    async with running(create_app(settings)) as c:
        await wait_ready(c)
        await sign_in(c, "alice")
        await c.post("/api/v1/datasets", json={"name": "pets", "folder_train": "/data/pets"})
        await sign_in(c, "admin")

        async def rows() -> list[dict[str, object]]:
            return (await c.get("/api/v1/audit")).json()["entries"]

        before = await until(lambda: _with(rows, "DatasetCreated"))
    settings.readmodel_path.unlink()
    async with running(create_app(settings)) as c:
        await wait_ready(c)
        await sign_in(c, "admin")
        after = (await c.get("/api/v1/audit")).json()["entries"]
    assert after == before


async def _with(rows, kind: str) -> list[dict[str, object]]:
    found = await rows()
    return found if any(e["type"] == kind for e in found) else []
