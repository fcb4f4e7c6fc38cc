"""The home list's JSON (`/completed_jobs.json`): metric columns, duration, tags, `?ids=`."""

from __future__ import annotations

from typing import Any

from tests.gateway.accounts import another_client, sign_in
from tests.gateway.helpers import until
from tests.gateway.test_models_routes import built_dataset, form

JSON = {"Accept": "application/json"}
DIGITS_FIELDS = {"id", "name", "group", "status", "status_css", "submitted", "elapsed"}


def _find(listing: dict[str, Any], job_id: str) -> dict[str, Any] | None:
    for bucket in ("running", "datasets", "models", "pretrained_models"):
        for item in listing[bucket]:
            if item["id"] == job_id:
                return item
    return None


async def test_model_rows_carry_best_accuracy_final_loss_duration_and_live_sparkline(
    client, backend
) -> None:
    """While it runs: the sparkline and metrics grow; done: duration stops; DIGITS keys stay."""
    dataset_id = await built_dataset(client, backend)
    model_id = (
        await client.post("/models/images/classification.json", data=form(dataset_id))
    ).json()["id"]
    first = _find((await client.get("/completed_jobs.json")).json(), model_id)
    assert first is not None
    assert (first["best_val_accuracy"], first["final_train_loss"], first["duration"]) == (
        None,
        None,
        None,
    )
    assert first["tags"] == [] and first["network"] == "lenet"
    await backend.start_training(model_id)
    for it in range(1, 5):
        await backend.metric(model_id, it, loss=2.0 / it)
    await backend.metric(model_id, 4, "val", loss=0.5, accuracy=0.6)
    await backend.metric(model_id, 8, "val", loss=0.6, accuracy=0.55)

    async def measured() -> dict[str, Any] | None:
        r = await client.get(f"/completed_jobs.json?ids={model_id}")
        item = _find(r.json(), model_id)
        return (
            item
            if item
            and item["final_train_loss"] is not None
            and len(item["loss_sparkline"]) == 4
            and item["best_val_accuracy"] is not None
            else None
        )

    item = await until(measured)
    running = (await client.get(f"/completed_jobs.json?ids={model_id}")).json()
    assert [j["id"] for j in running["running"]] == [model_id]
    assert running["datasets"] == []  # only what was asked for
    assert item["best_val_accuracy"] == 0.6  # the best, not the last (0.55)
    assert item["final_train_loss"] == 0.5  # the last train loss (2 / 4)
    assert item["loss_sparkline"] == [2.0, 1.0, round(2 / 3, 6), 0.5]
    assert item["duration"] is not None and item["duration"] >= 0
    assert item.keys() >= DIGITS_FIELDS and "loss (train) last" in item
    await backend.complete(model_id)

    async def done() -> dict[str, Any] | None:
        listing = (await client.get("/completed_jobs.json")).json()
        found = next((m for m in listing["models"] if m["id"] == model_id), None)
        return found if found and found["status"] == "Done" else None

    ended = await until(done)
    again = await until(done)
    assert ended["duration"] == again["duration"]  # stopped at the end, not counting on


async def test_ids_filter_refuses_bad_ids_with_400_naming_the_field(client, backend) -> None:
    r = await client.get("/completed_jobs.json?ids=../etc", headers=JSON)
    assert r.status_code == 400 and "ids" in r.json()["errors"]
    r = await client.get("/completed_jobs.json?ids=", headers=JSON)
    assert r.status_code == 200  # nothing asked: nothing listed
    assert r.json()["models"] == [] and r.json()["running"] == []


async def test_owner_sets_tags_that_reach_the_list_and_job_json(client, backend) -> None:
    """`job_tags` comma-separated (form) or a list (JSON): cleaned, deduped; "" clears;
    refused tags answer 400 naming `job_tags`; another user gets 403."""
    dataset_id = await built_dataset(client, backend)
    r = await client.put(f"/jobs/{dataset_id}", data={"job_tags": " baseline, cats ,, Cats"})
    assert r.status_code == 200, r.text

    async def tags() -> list[str]:
        item = _find((await client.get("/completed_jobs.json")).json(), dataset_id)
        return item["tags"] if item else []

    assert await until(tags) == ["baseline", "cats"]
    data = (await client.get(f"/datasets/{dataset_id}.json")).json()
    assert data["tags"] == ["baseline", "cats"] and data["name"] == "pets"

    model_id = (
        await client.post("/models/images/classification.json", data=form(dataset_id))
    ).json()["id"]
    r = await client.put(f"/jobs/{model_id}", json={"job_tags": ["lr 0.1", "sweep"]})
    assert r.status_code == 200, r.text

    async def model_tags() -> list[str]:
        return (await client.get(f"/models/{model_id}.json")).json()["tags"]

    assert await until(model_tags) == ["lr 0.1", "sweep"]

    r = await client.put(f"/jobs/{model_id}", json={"job_tags": ["x" * 41]}, headers=JSON)
    assert r.status_code == 400 and "job_tags" in r.json()["errors"]
    r = await client.put(f"/jobs/{model_id}", json={"job_tags": [str(i) for i in range(17)]})
    assert r.status_code == 400
    async with another_client(client) as bob:
        await sign_in(bob, "bob")
        r = await bob.put(f"/jobs/{model_id}", data={"job_tags": "mine"}, headers=JSON)
        assert r.status_code == 403
    r = await client.put(f"/jobs/{model_id}", data={"job_tags": ""})
    assert r.status_code == 200

    async def cleared() -> bool:
        return (await model_tags()) == []

    assert await until(cleared)


def test_tags_are_cleaned_the_same_way_everywhere() -> None:
    """The one rule the gateway and both services apply (proto's clean_tags/edited_tags)."""
    from digits_proto.base import clean_tags, edited_tags

    assert clean_tags(["  a  b ", "A  B", "", "c"]) == ["a b", "c"]
    assert edited_tags(None, ["a"]) is None
    assert edited_tags(["a"], ["a"]) is None
    assert edited_tags([], ["a"]) == []


async def test_home_page_offers_upload_only_to_creators_and_sends_visitors_to_log_in(
    client,
) -> None:
    """The real route: alice (user) sees "Upload pretrained model"; vera (viewer) does not;
    nobody signed in gets the login page, never the list."""
    page = (await client.get("/")).text
    assert 'id="upload-pretrained"' in page and 'id="sel-delete"' in page
    assert 'data-listing="/completed_jobs.json"' in page and 'data-events="/events"' in page
    assert 'data-me="alice"' in page and 'data-role="user"' in page
    async with another_client(client) as vera:
        await sign_in(vera, "vera")
        page = (await vera.get("/")).text
        assert 'id="job-filter"' in page and 'id="upload-pretrained"' not in page
        assert 'id="sel-delete"' not in page
    async with another_client(client) as nobody:
        r = await nobody.get("/", follow_redirects=False)
        assert r.status_code in (302, 303) and r.headers["location"].startswith("/login")


async def test_api_patch_sets_tags_and_a_refusal_names_tags(client, backend) -> None:
    dataset_id = await built_dataset(client, backend)
    r = await client.patch(f"/api/v1/jobs/{dataset_id}", json={"tags": ["a", " b ", "A"]})
    assert r.status_code == 200, r.text
    assert r.json()["tags"] == ["a", "b"]
    r = await client.patch(f"/api/v1/jobs/{dataset_id}", json={"tags": ["x,y"]})
    assert r.status_code == 400 and "tags" in r.json()["errors"]
    jobs = (await client.get("/api/v1/jobs")).json()["jobs"]
    assert [j["tags"] for j in jobs if j["id"] == dataset_id] == [["a", "b"]]
