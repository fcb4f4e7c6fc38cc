"""`/api/v1/compare` and `/models/compare` against the real app: several runs in one call."""

from __future__ import annotations

import time

from digits_gateway.controllers import compare
from tests.gateway.helpers import until


async def _dataset(client, backend) -> str:
    ds = (await client.post("/api/v1/datasets", json={"name": "p", "folder_train": "/d"})).json()
    await backend.build(ds["id"])

    async def built() -> bool:
        return (await client.get(f"/api/v1/datasets/{ds['id']}")).json()["status"] == "Done"

    await until(built)
    return ds["id"]


async def _model(client, dataset_id: str, name: str, **fields) -> str:
    body = {"name": name, "dataset_id": dataset_id, "network": "lenet", **fields}
    r = await client.post("/api/v1/models", json=body)
    assert r.status_code == 202, r.text
    return r.json()["id"]


async def test_three_runs_compared_in_one_call(client, backend) -> None:
    """Settings that differ (lr, batch size) vs the same (network, solver…), best first,
    summaries from the metrics, curves as columns, a deleted id named as missing."""
    ds = await _dataset(client, backend)
    a = await _model(client, ds, "a", learning_rate=0.1, batch_size=32, group="sweep")
    b = await _model(client, ds, "b", learning_rate=0.01, batch_size=64, group="sweep")
    c = await _model(client, ds, "c", learning_rate=0.001, batch_size=32, group="sweep")
    gone = await _model(client, ds, "gone")
    for job_id, acc in ((a, 0.5), (b, 0.9), (c, 0.7)):
        await backend.start_training(job_id)
        for it in range(3):
            await backend.metric(job_id, it, loss=1.0 / (it + 1), learning_rate=0.1)
        await backend.metric(job_id, 10, "val", loss=0.4, accuracy=acc - 0.1)
        await backend.metric(job_id, 20, "val", loss=0.3, accuracy=acc)
    await backend.complete(b)
    await client.delete(f"/api/v1/models/{gone}")

    async def view() -> dict | None:
        r = await client.get("/api/v1/compare", params={"ids": f"{a},{b},{c},{gone}"})
        got = r.json()
        done = all(len(run["metrics"].get("val", {}).get("epoch", [])) == 2 for run in got["runs"])
        return got if r.status_code == 200 and done and got["runs"][0]["status"] == "Done" else None

    got = await until(view)
    assert [r["id"] for r in got["runs"]] == [b, c, a]  # best val accuracy first
    assert got["best_run"] == b and got["missing"] == [gone] and got["finished"] is False
    differ = {row["key"]: row for row in got["settings"]["differ"]}
    assert set(differ) == {"learning_rate", "batch_size"}
    assert (
        differ["learning_rate"]["values"] == [0.01, 0.001, 0.1] and differ["batch_size"]["numeric"]
    )
    same = {row["key"]: row["value"] for row in got["settings"]["same"]}
    assert same["network"] == "lenet" and same["dataset"] == "p" and same["solver_type"] == "SGD"
    assert "lr_exp_gamma" not in same  # a parameter of a policy none of them uses
    best = got["runs"][0]
    assert best["summary"] == {
        "best_val_accuracy": 0.9,
        "best_val_accuracy_epoch": 2.0,
        "best_val_loss": 0.3,
        "final_val_loss": 0.3,
        "final_train_loss": 1.0 / 3,
    }
    train = best["metrics"]["train"]
    assert train["iteration"] == [0, 1, 2] and train["values"]["learning_rate"] == [0.1] * 3
    # When each point was measured (the event's occurred_at): charts by wall time.
    assert all(abs(t - time.time()) < 60 for t in train["time"]) and train["time"] == sorted(
        train["time"]
    )
    assert best["url"] == f"/models/{b}" and best["duration_seconds"] >= 0

    by_group = (await client.get("/api/v1/compare", params={"group": "sweep"})).json()
    assert {r["id"] for r in by_group["runs"]} == {a, b, c} and by_group["group"] == "sweep"


async def test_bad_queries_are_400_naming_the_field(client) -> None:
    """No ids, too many, both ids and group: 400 naming the field, never 500."""
    r = await client.get("/api/v1/compare")
    assert r.status_code == 400 and "ids" in r.json()["errors"]
    many = ",".join(f"id{i}" for i in range(21))
    r = await client.get("/api/v1/compare", params={"ids": many})
    assert r.status_code == 400 and "20" in r.json()["errors"]["ids"][0]
    r = await client.get("/api/v1/compare", params={"ids": "x,y", "group": "g"})
    assert r.status_code == 400 and "ids" in r.json()["errors"]
    r = await client.get("/api/v1/compare", params={"group": " "})
    assert r.status_code == 400 and "group" in r.json()["errors"]
    r = await client.get("/api/v1/compare", params={"ids": "a" * 5000})
    assert r.status_code == 400 and "ids" in r.text
    r = await client.get("/api/v1/compare", params={"ids": "nope,never"})
    assert r.status_code == 200 and r.json()["missing"] == ["nope", "never"]
    assert r.json()["runs"] == []


async def test_page_and_access(client) -> None:
    """The page renders (400 with the reason for too many ids); signed out: login / 401."""
    r = await client.get("/models/compare", params={"ids": "nope,never"})
    assert r.status_code == 200 and "nope" in r.text and 'id="compare-page"' in r.text
    many = ",".join(f"id{i}" for i in range(21))
    r = await client.get("/models/compare", params={"ids": many})
    assert r.status_code == 400 and "At most 20 models" in r.text
    schema = (await client.get("/schema/openapi.json")).json()
    assert "/api/v1/compare" in schema["paths"]
    client.cookies.clear()
    assert (await client.get("/api/v1/compare", params={"ids": "a,b"})).status_code == 401
    r = await client.get("/models/compare", params={"ids": "a,b"})
    assert r.status_code == 302 and r.headers["location"].startswith("/login")


def test_long_series_are_thinned_for_the_charts() -> None:
    """2,500 points come back as at most 1,000, first and last kept, columns still aligned."""
    n = 2500
    series = {
        "train": {
            "epoch": [i / 100 for i in range(n)],
            "iteration": list(range(n)),
            "time": [float(i) for i in range(n)],
            "values": {"loss": [1.0 / (i + 1) for i in range(n)]},
        }
    }
    got = compare.thinned(series)["train"]
    assert len(got["iteration"]) <= compare.MAX_POINTS
    assert got["iteration"][0] == 0 and got["iteration"][-1] == n - 1
    assert got["values"]["loss"] == [1.0 / (i + 1) for i in got["iteration"]]
    assert got["epoch"] == [i / 100 for i in got["iteration"]]
    assert compare.thinned({"val": series["train"]}, limit=n)["val"] is series["train"]


async def test_page_takes_a_shared_links_chart_view(client) -> None:
    """A shared link carries the charts' view beside ids (x, smooth, log, hide: read by
    compare.js); the page ignores them, bad ones included; signed out, login comes back to it."""
    view = {"x": "furlongs", "smooth": "7", "log": "1", "hide": "nope"}
    r = await client.get("/models/compare", params={"ids": "nope,never", **view})
    assert r.status_code == 200 and 'id="compare-page"' in r.text
    client.cookies.clear()
    r = await client.get("/models/compare", params={"ids": "a,b", "x": "time", "log": "1"})
    assert r.status_code == 302 and "x%3Dtime" in r.headers["location"]
