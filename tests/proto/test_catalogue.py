"""The committed event catalogue (proto/schema) is current, valid AsyncAPI 3 and complete."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import yaml

import digits_proto
from digits_proto import catalogue, subjects

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "proto" / "schema"
# Core subjects that carry no message of the contract: the live log is raw text on request.
NOT_MESSAGES = {subjects.model_log("x")}


def _committed() -> dict[str, str]:
    return {
        str(p.relative_to(SCHEMA_DIR)): p.read_text(encoding="utf-8")
        for p in sorted(SCHEMA_DIR.rglob("*"))
        if p.is_file()
    }


def test_the_committed_catalogue_is_what_make_schema_generates() -> None:
    """Any change to a message, subject, version or permission shows up as a diff of the
    committed files; a stale or extra file fails here."""
    expected, committed = catalogue.render(), _committed()
    stale = sorted(
        p for p in expected.keys() | committed.keys() if expected.get(p) != committed.get(p)
    )
    assert not stale, f"proto/schema is stale ({', '.join(stale[:5])}...): run `make schema`"


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    node: Any = doc
    for part in ref.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_the_asyncapi_document_parses_and_every_reference_resolves() -> None:
    """The YAML is AsyncAPI 3.0.0, and every `$ref` points at something in it."""
    doc = yaml.safe_load((SCHEMA_DIR / "asyncapi.yaml").read_text(encoding="utf-8"))
    assert doc["asyncapi"] == "3.0.0"
    assert doc["channels"] and doc["operations"]
    for ref in _refs(doc):
        assert ref.startswith("#/"), ref
        _resolve(doc, ref)  # a KeyError names the broken reference
    for op in doc["operations"].values():
        channel = _resolve(doc, op["channel"]["$ref"])
        assert all(_resolve(doc, m["$ref"]) in channel["messages"].values() for m in op["messages"])


def test_every_message_is_on_a_channel_and_has_its_own_schema_file() -> None:
    """A consumer finds each message of the registry somewhere on the bus, with its schema."""
    doc = yaml.safe_load((SCHEMA_DIR / "asyncapi.yaml").read_text(encoding="utf-8"))
    on_channels = {name for c in doc["channels"].values() for name in c["messages"]}
    names = {m.__name__ for m in digits_proto.ALL_MESSAGES}
    assert names - on_channels == set()
    for name in names:
        schema = json.loads((SCHEMA_DIR / "messages" / f"{name}.json").read_text())
        assert schema["$ref"] == f"#/$defs/{name}"
        assert schema["$defs"][name]["properties"]["type"]["enum"] == [
            doc["components"]["messages"][name]["x-digits-tag"]
        ]


def _spelled_subjects() -> set[str]:
    """Every concrete subject `subjects` spells: its constants and its functions' results."""
    found: set[str] = set()
    for value in vars(subjects).values():
        if isinstance(value, str) and value.startswith("digits.") and not value.endswith(">"):
            found.add(value)
        elif inspect.isfunction(value) and value.__module__ == subjects.__name__:
            result = value(*["x"] * len(inspect.signature(value).parameters))
            if isinstance(result, str) and result.startswith("digits."):
                found.add(result)
    return found - NOT_MESSAGES


def test_every_subject_of_proto_is_a_channel_with_its_stream_and_publishers() -> None:
    """Each subject spelled in `subjects` is a channel address, stored where its stream's
    filter says, published by the services the permission table allows."""
    samples = {catalogue.sample(c.address): c for c in catalogue.CHANNELS}
    missing = sorted(_spelled_subjects() - samples.keys())
    assert not missing, f"subjects without a channel in digits_proto.catalogue: {missing}"
    doc = catalogue.document()
    models = doc["channels"]["modelEvents"]
    assert models["x-digits-stream"] == subjects.STREAM_MODELS
    assert models["x-digits-publishers"] == [subjects.SERVICE_TRAINER]
    assert subjects.SERVICE_GATEWAY in models["x-digits-receivers"]
    assert models["parameters"] == {"model_id": {"description": catalogue.ID_PARAMS["model_id"]}}
    create = doc["channels"]["createModel"]
    assert create["x-digits-stream"] is None
    assert create["x-digits-publishers"] == [subjects.SERVICE_GATEWAY]
    assert create["x-digits-receivers"] == [subjects.SERVICE_TRAINER]
    assert doc["operations"]["createModel"]["action"] == "receive"
    assert set(doc["channels"]["createModelReply"]["messages"]) == {"Accepted", "Rejected"}
    work = doc["channels"]["trainModelWork"]
    assert work["x-digits-stream"] == subjects.STREAM_WORK
    assert work["x-digits-receivers"] == [subjects.SERVICE_TRAINER]


def test_each_stored_message_declares_its_schema_header() -> None:
    """The catalogue tells a consumer the `Digits-Schema` value each event and ticket is stored
    with; request/reply messages are never stored and have none."""
    doc = catalogue.document()
    created = doc["components"]["messages"]["ModelCreated"]
    assert created["headers"]["properties"]["Digits-Schema"]["const"] == "models.ModelCreated/1"
    assert created["x-digits-version"] == 1
    ticket = doc["components"]["messages"]["TrainModelTicket"]
    assert ticket["headers"]["properties"]["Digits-Schema"]["const"] == "models.TrainModelTicket/1"
    assert "headers" not in doc["components"]["messages"]["CreateModel"]  # request/reply only
