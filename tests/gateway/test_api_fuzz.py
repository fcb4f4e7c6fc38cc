"""Property-based fuzzing of `/api/v1` from the gateway's own OpenAPI document (schemathesis).

Cases are drawn from the document the running app serves (valid and schema-breaking ones), sent
through the in-loop client with a Bearer token (alice; admin for the admin-only routes), and every
answer must keep the contract: never a 5xx; a 400/422 names, under `errors`, only fields of the
operation or of the body sent (or `body` when the body is not a JSON object at all); any other 4xx
is a reasoned `{"error": {"message"}}` (a 429 also says when to come back).
"""

from __future__ import annotations

import functools
import json
import re
import time
from collections.abc import Iterable
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import APIOperation, Case, GenerationMode

from digits_gateway.settings import Settings
from tests.gateway.accounts import bearer
from tests.gateway.conftest import make_settings

EXAMPLES = 25  # per operation and mode: ~800 requests in all, about 40 s on a busy machine
RAW_EXAMPLES = 30  # broken bodies, each sent to every operation that takes JSON
PINNED_EXAMPLES = 12  # per operation whose path or body can point at something that exists
ADMIN_ONLY = {("GET", "/api/v1/users"), ("POST", "/api/v1/users")}
ADMIN_ONLY |= {("PATCH", "/api/v1/users/{username}"), ("GET", "/api/v1/audit")}
ELEMENT = re.compile(r"\[\d+\]$")
REASONED = {401, 403, 404, 409, 413, 429}
# Destructive operations run last, so that the others meet the jobs they are pinned to.
LAST = {"POST": 1, "DELETE": 2}


@pytest.fixture
def settings(nats_url: str, tmp_path: Any) -> Settings:
    """Limits out of the fuzzer's way (they have their own tests); no sign-in delay."""
    return make_settings(
        nats_url,
        tmp_path,
        rate_limit_per_minute=1_000_000,
        sign_in_rate_limit_per_minute=1_000_000,
        login_delay_base=0.0,
        login_delay_max=0.0,
    )


def draw(strategy: Any, examples: int) -> list[Any]:
    """Up to `examples` distinct cases of a strategy, the same ones on every run."""
    cases: list[Any] = []

    @hypothesis_settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(case: Any) -> None:
        cases.append(case)

    try:
        collect()
    except Unsatisfiable:  # nothing in this operation can break its schema (no body, no query)
        return []
    seen: set[str] = set()
    unique = []
    for case in cases:
        key = repr(
            (case.path_parameters, case.query, case.body) if isinstance(case, Case) else case
        )
        if key not in seen:
            seen.add(key)
            unique.append(case)
    return unique


def api_operations(doc: dict[str, Any]) -> list[APIOperation]:
    """Every `/api/v1` operation of the document, destructive ones last."""
    schema = schemathesis.openapi.from_dict(doc)
    operations = [result.ok() for result in schema.get_all_operations()]
    operations = [op for op in operations if op.path.startswith("/api/v1/")]
    return sorted(operations, key=lambda op: (LAST.get(op.method.upper(), 0), op.path))


def body_fields(doc: dict[str, Any], operation: APIOperation) -> set[str]:
    """The property names of the operation's JSON body schema."""
    names: set[str] = set()
    content = doc["paths"][operation.path][operation.method].get("requestBody", {})
    for media in content.get("content", {}).values():
        schema = media.get("schema", {})
        ref = schema.get("$ref", "")
        if ref:
            schema = doc["components"]["schemas"][ref.rsplit("/", 1)[-1]]
        names |= set(schema.get("properties", {}))
    return names


def operation_names(doc: dict[str, Any], operation: APIOperation) -> set[str]:
    """Every name a 400 may put its complaint under for this operation."""
    params = doc["paths"][operation.path][operation.method].get("parameters", [])
    return {p["name"] for p in params} | body_fields(doc, operation)


def complaint(names: set[str], case: Case, response: httpx.Response) -> str | None:
    """Why this answer breaks the contract; None when it keeps it."""
    status = response.status_code
    if status < 400:
        return None
    if status >= 500:
        return "a server error"
    if str(getattr(case, "method", "")).upper() == "HEAD":
        return None  # a HEAD answer has no body to give a reason in (HTTP)
    try:
        body = response.json()
    except json.JSONDecodeError:
        return "a 4xx that is not JSON"
    if status in (400, 422):
        return bad_request_complaint(names, case, body)
    if status in REASONED:
        message = body.get("error", {}).get("message") if isinstance(body, dict) else None
        if not isinstance(message, str) or not message.strip():
            return f"a {status} without a reason"
        if status == 429 and "retry-after" not in response.headers:
            return "a 429 without Retry-After"
        return None
    return f"an unexpected {status}"


def bad_request_complaint(names: set[str], case: Case, body: Any) -> str | None:
    """A 400 must say which field (or that the body as a whole is no JSON object)."""
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, dict) or not errors:
        return "a 400 without `errors`"
    sent = set(case.body) if isinstance(case.body, dict) else set()
    sent |= set(case.query or {})
    for field, messages in errors.items():
        whole_body = field == "body" and not isinstance(case.body, dict)
        root = field if field in sent else ELEMENT.sub("", field)  # `select_gpus[0]`: its list
        if root not in names | sent and not whole_body:
            return f"a 400 under `{field}`, which is no field of the request"
        if not messages or not all(isinstance(m, str) and m.strip() for m in messages):
            return f"a 400 under `{field}` without a message"
    return None


async def send(client: httpx.AsyncClient, case: Case, auth: dict[str, str]) -> httpx.Response:
    """The case as schemathesis would send it (encoded by `requests`, multipart included),
    through the in-loop client, with `auth` as the only credential."""
    kwargs = case.as_transport_kwargs(base_url=str(client.base_url).rstrip("/"))
    kwargs.pop("cookies", None)
    kwargs["headers"] = {**kwargs.get("headers", {}), **auth}
    prepared = requests.Request(**kwargs).prepare()
    client.cookies.clear()  # no session, so no CSRF either
    body = prepared.body.encode() if isinstance(prepared.body, str) else prepared.body
    return await client.request(
        kwargs["method"], prepared.url or "", headers=dict(prepared.headers), content=body
    )


def aim(fields: dict[str, str], case: Case) -> Case:
    """The case with these body fields set to things that exist (the rest stays generated)."""
    if isinstance(case.body, dict):
        case.body.update({k: v for k, v in fields.items() if k in case.body})
    return case


def cases_for(operation: APIOperation, names: set[str], pins: dict[str, str]) -> Iterable[Case]:
    """Valid and schema-breaking cases, then valid ones aimed at things that exist."""
    yield from draw(operation.as_strategy(GenerationMode.POSITIVE), EXAMPLES)
    yield from draw(operation.as_strategy(GenerationMode.NEGATIVE), EXAMPLES)
    path_names = {p.name for p in operation.path_parameters}
    if "/datasets/" in operation.path:
        pins = {**pins, "job_id": pins["dataset_id"]}
    in_path = {k: v for k, v in pins.items() if k in path_names}
    in_body = {k: v for k, v in pins.items() if k in names - path_names}
    if in_path or in_body:
        strategy = operation.as_strategy(GenerationMode.POSITIVE, path_parameters=in_path or None)
        yield from draw(strategy.map(functools.partial(aim, in_body)), PINNED_EXAMPLES)


async def existing_things(client: httpx.AsyncClient, backend: Any) -> dict[str, str]:
    """A built dataset and a model of alice's, and bob, for the fuzzer to aim at."""
    folder = "/data/x"
    r = await client.post("/api/v1/datasets", json={"name": "fuzz", "folder_train": folder})
    assert r.status_code == 202, r.text
    dataset_id = r.json()["id"]
    await backend.build(dataset_id)
    r = await client.post("/api/v1/models", json={"name": "m", "dataset_id": dataset_id})
    assert r.status_code == 202, r.text
    return {
        "job_id": r.json()["id"],
        "dataset_id": dataset_id,
        "folder_train": folder,
        "username": "bob",
    }


async def test_no_api_v1_request_is_a_server_error_and_every_4xx_says_why(
    client: httpx.AsyncClient, backend: Any
) -> None:
    """Hundreds of generated requests to every /api/v1 operation: no 5xx, each 4xx names why."""
    doc = (await client.get("/schema/openapi.json")).json()
    pinned = await existing_things(client, backend)
    alice, admin = await bearer(client, "alice"), await bearer(client, "admin")
    operations = api_operations(doc)
    assert len(operations) >= 25, [f"{op.method} {op.path}" for op in operations]
    failures: list[str] = []
    sent = 0
    started = time.monotonic()
    async with httpx.AsyncClient(transport=client._transport, base_url=client.base_url) as fuzz:
        for operation in operations:
            names = operation_names(doc, operation)
            admin_only = (operation.method.upper(), operation.path) in ADMIN_ONLY
            for case in cases_for(operation, names, pinned):
                response = await send(fuzz, case, admin if admin_only else alice)
                sent += 1
                why = complaint(names, case, response)
                if why:
                    failures.append(
                        f"{why}: {case.method} {case.formatted_path} query={case.query!r} "
                        f"body={case.body!r:.200} -> {response.status_code} {response.text:.300}"
                    )
    print(
        f"fuzzed {len(operations)} operations, {sent} requests, {time.monotonic() - started:.1f} s"
    )
    assert not failures, "\n".join(failures[:30])


def raw_bodies() -> list[bytes]:
    """What a broken client sends as JSON: any bytes, or JSON with bytes spliced into it."""
    scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
    values = st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
        max_leaves=8,
    )
    text = values.map(lambda v: json.dumps(v, ensure_ascii=False).encode())
    spliced = st.tuples(text, st.integers(0, 40), st.binary(min_size=1), st.booleans()).map(
        lambda t: t[0][: t[1]] + t[2] + (t[0][t[1] :] if t[3] else b"")
    )
    return draw(st.binary(max_size=64) | spliced, RAW_EXAMPLES)


async def test_broken_json_bodies_are_a_400_on_body_for_every_operation_that_takes_json(
    client: httpx.AsyncClient, backend: Any
) -> None:
    """Random bytes and truncated JSON to every JSON-taking operation: never a 5xx, 400s say why."""
    doc = (await client.get("/schema/openapi.json")).json()
    pinned = await existing_things(client, backend)
    alice, admin = await bearer(client, "alice"), await bearer(client, "admin")
    takes_json = [op for op in api_operations(doc) if "application/json" in str(op.body)]
    assert len(takes_json) >= 8, [f"{op.method} {op.path}" for op in takes_json]
    bodies, failures = raw_bodies(), []
    async with httpx.AsyncClient(transport=client._transport, base_url=client.base_url) as fuzz:
        for operation in takes_json:
            path = operation.path.format(job_id=pinned["job_id"], username=pinned["username"])
            auth = admin if (operation.method.upper(), operation.path) in ADMIN_ONLY else alice
            headers = {**auth, "content-type": "application/json"}
            for raw in bodies:
                fuzz.cookies.clear()
                r = await fuzz.request(operation.method.upper(), path, content=raw, headers=headers)
                try:
                    sent = json.loads(raw)
                except ValueError:  # not JSON at all: the whole body is what is wrong
                    sent = None
                case: Any = type("RawCase", (), {"body": sent, "query": {}})()
                why = complaint(operation_names(doc, operation), case, r)
                if why:
                    failures.append(
                        f"{why}: {operation.method} {path} {raw!r:.120} -> {r.text:.200}"
                    )
    assert not failures, "\n".join(failures[:30])


# --- what the fuzzer found, each kept as a test of its own ---


async def test_a_body_that_is_no_json_object_is_a_400_under_body(client: httpx.AsyncClient) -> None:
    """`[]` or `1.5` as the body: the 400 says `body`, not litestar's internal name `data`."""
    for body in ([], 1.5):
        r = await client.post("/api/v1/tokens", json=body)
        assert r.status_code == 400, r.text
        assert list(r.json()["errors"]) == ["body"] and "object" in r.json()["errors"]["body"][0]


async def test_an_unknown_field_is_named_as_sent_even_empty_or_with_backticks(
    client: httpx.AsyncClient,
) -> None:
    """An unknown field named `` or a`b is refused under exactly that name (was `data`, `a`)."""
    for name in ("", "a`b", "`"):
        r = await client.post("/api/v1/tokens", json={"name": "t", name: 1})
        assert r.status_code == 400, r.text
        assert list(r.json()["errors"]) == [name], r.text


async def test_a_json_body_nested_too_deeply_is_a_400_naming_the_limit(
    client: httpx.AsyncClient,
) -> None:
    """5000 nested objects were a RecursionError and a 500; now a 400 on `body` with the limit."""
    deep = b'{"a":' * 5000 + b"1" + b"}" * 5000
    for path in ("/api/v1/tokens", "/api/v1/models", "/api/v1/jobs/x"):
        method = "PATCH" if path.startswith("/api/v1/jobs") else "POST"
        r = await client.request(
            method, path, content=deep, headers={"content-type": "application/json"}
        )
        assert r.status_code == 400, r.text
        (message,) = r.json()["errors"]["body"]
        assert "nested too deeply" in message and "limit" in message


async def test_a_body_that_is_not_utf8_is_a_400_on_body(client: httpx.AsyncClient) -> None:
    """A latin-1 body was a UnicodeDecodeError and a 500; JSON must be UTF-8, the 400 says so."""
    latin1 = '{"name": "café"}'.encode("latin-1")
    for path in ("/api/v1/tokens", "/api/v1/datasets", "/api/v1/session"):
        r = await client.post(path, content=latin1, headers={"content-type": "application/json"})
        assert r.status_code == 400, r.text
        (message,) = r.json()["errors"]["body"]
        assert "not UTF-8" in message


async def test_an_empty_body_is_a_400_saying_a_json_body_is_required(
    client: httpx.AsyncClient,
) -> None:
    """No body at all said `'data'` (litestar's KeyError); now it says what is missing."""
    r = await client.post(
        "/api/v1/tokens", content=b"", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400, r.text
    assert r.json()["errors"] == {"body": ["A JSON body is required"]}


async def test_classify_describes_its_multipart_form_in_the_openapi_document(
    client: httpx.AsyncClient,
) -> None:
    """The classify route reads `image_file` itself; the document now says so (it said nothing)."""
    doc = (await client.get("/schema/openapi.json")).json()
    body = doc["paths"]["/api/v1/models/{job_id}/classify"]["post"]["requestBody"]
    form = body["content"]["multipart/form-data"]["schema"]
    assert form["required"] == ["image_file"] and form["properties"]["image_file"]["format"] == (
        "binary"
    )
    assert "snapshot_epoch" in form["properties"]


def test_the_contract_check_flags_server_errors_unnamed_fields_and_bare_refusals() -> None:
    """The fuzzer's judge is not a rubber stamp: each way to break the contract is caught."""
    case: Any = type("FakeCase", (), {"body": {"name": "t", "extra": 1}, "query": {}})()
    names = {"name"}

    def answer(status: int, body: Any, **headers: str) -> httpx.Response:
        return httpx.Response(status, json=body, headers=headers)

    def judged(response: httpx.Response) -> str | None:
        return complaint(names, case, response)

    assert judged(answer(500, {"error": {"message": "internal error"}})) == "a server error"
    assert "data" in (judged(answer(400, {"errors": {"data": ["Expected `object`"]}})) or "")
    assert "body" in (judged(answer(400, {"errors": {"body": ["bad"]}})) or "")  # it is an object
    assert judged(answer(400, {"errors": {"name": []}})) is not None
    assert judged(answer(400, {"error": {"message": "no field"}})) is not None
    assert judged(answer(403, {"error": {"message": ""}})) is not None
    assert judged(answer(429, {"error": {"message": "slow down"}})) is not None
    assert judged(httpx.Response(404, text="Not Found")) is not None
    assert judged(answer(405, {"error": {"message": "no"}})) is not None
    assert judged(answer(400, {"errors": {"extra": ["unknown field `extra`"]}})) is None
    assert judged(answer(400, {"errors": {"name[0]": ["Expected `str`"]}})) is None
    assert judged(answer(429, {"error": {"message": "slow down"}}, **{"Retry-After": "3"})) is None
    assert judged(answer(404, {"error": {"message": "Job not found"}})) is None
