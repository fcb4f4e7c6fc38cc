"""The published event catalogue: an AsyncAPI 3 document and one JSON Schema per message.

Generated from the contract itself (subjects, messages, versions, the permission table), and
committed under `proto/schema/` by `make schema` (`python -m digits_proto.catalogue DIR`); a
test regenerates it in memory and fails when the committed files differ. Consumers read those
files instead of this package's source.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from digits_proto import ALL_MESSAGES, datasets, gpus, headers, inference, models, users
from digits_proto import subjects as s
from digits_proto.permissions import DURABLES, TABLE
from digits_proto.replies import Accepted, Rejected
from digits_proto.versions import REGISTRY, tag_of

ASYNCAPI = "3.0.0"
JSON_SCHEMA = "https://json-schema.org/draft/2020-12/schema"
COMPONENT_REF = "#/components/schemas/{name}"
# Streams a subject can be stored in: the event streams and the work queue.
STREAMS = {**s.EVENT_STREAMS, s.STREAM_WORK: s.WORK}
ID_PARAMS = {
    "dataset_id": "A dataset's job id (YYYYMMDD-HHMMSS-xxxx).",
    "model_id": "A model's job id (YYYYMMDD-HHMMSS-xxxx).",
    "node_id": "A node's id (its gpu-broker's); never starts with '_'.",
    "username": "An account's name, with '.' spelled '~' (one subject token).",
    "verb": "acquire, renew or release.",
}


@dataclass(frozen=True)
class Channel:
    """One subject pattern: the messages on it and, for a command, what its replies are."""

    id: str
    address: str
    messages: tuple[type, ...]
    description: str
    replies: tuple[type, ...] = ()
    consumer: str = ""  # a work queue's durable consumer: its owner alone takes the tickets


def _members(union: Any, *without: type) -> tuple[type, ...]:
    return tuple(t for t in union.__args__ if t not in without)


def _command(id: str, subject: str, command: type, *replies: type) -> Channel:
    doc = (command.__doc__ or "").strip().splitlines()[0]
    return Channel(id, subject, (command,), doc, replies or (Accepted, Rejected))


def _param(name: str) -> str:
    return "{" + name + "}"


CHANNELS: tuple[Channel, ...] = (
    Channel(
        "datasetEvents",
        s.dataset_events(_param("dataset_id")),
        _members(datasets.DatasetEvents, datasets.DatasetProgressed),
        "The history of one dataset: its aggregate's events, oldest first.",
    ),
    Channel(
        "modelEvents",
        s.model_events(_param("model_id")),
        _members(models.ModelEvents, models.TrainingProgressed),
        "The history of one model job (trained or pretrained): its aggregate's events.",
    ),
    Channel(
        "modelMetrics",
        s.model_metrics(_param("model_id")),
        (models.MetricsRecorded,),
        "Every point of a model's training series, kept until the job is deleted.",
    ),
    Channel(
        "modelProgress",
        s.model_progress(_param("model_id")),
        (models.TrainingProgressed,),
        "A training job's latest progress (only the last few are kept).",
    ),
    Channel(
        "datasetProgress",
        s.dataset_progress(_param("dataset_id")),
        (datasets.DatasetProgressed,),
        "A dataset build's latest progress (only the last few are kept).",
    ),
    Channel(
        "gpuEvents",
        s.gpu_events(_param("node_id")),
        _members(gpus.GpuEvents, gpus.QueueChanged),
        "One node's devices and leases.",
    ),
    Channel(
        "gpuQueue",
        s.GPU_QUEUE_EVENTS,
        (gpus.QueueChanged,),
        "The device queue as the brokers see it, a whole snapshot per event.",
    ),
    Channel(
        "telemetry",
        s.telemetry(_param("node_id")),
        (gpus.TelemetrySampled,),
        "Live device telemetry, about once a second (core NATS: not stored).",
    ),
    Channel(
        "userEvents",
        s.user_events(_param("username")),
        _members(users.UserEvents),
        "One account's history (the gateway owns accounts; secrets travel only as hashes).",
    ),
    Channel(
        "buildDatasetWork",
        s.WORK_BUILD_DATASET,
        (datasets.BuildDatasetTicket,),
        "Tickets for dataset builds (work queue; one worker takes each).",
        consumer=s.CONSUMER_DATASET_BUILDER,
    ),
    Channel(
        "trainModelWork",
        s.WORK_TRAIN_MODEL,
        (models.TrainModelTicket,),
        "Tickets for training jobs (work queue; redelivered if the trainer dies).",
        consumer=s.CONSUMER_TRAINER,
    ),
    Channel(
        "classifyManyWork",
        s.WORK_CLASSIFY_MANY,
        (inference.ClassifyManyTicket,),
        "Tickets for background classify-many jobs (work queue).",
        consumer=s.CONSUMER_CLASSIFIER,
    ),
    _command("createDataset", s.CMD_DATASETS_CREATE, datasets.CreateDataset),
    _command("abortDataset", s.CMD_DATASETS_ABORT, datasets.AbortDataset),
    _command("deleteDataset", s.CMD_DATASETS_DELETE, datasets.DeleteDataset),
    _command("editDataset", s.CMD_DATASETS_EDIT, datasets.EditDataset),
    _command(
        "resizeExample",
        s.CMD_DATASETS_RESIZE_EXAMPLE,
        datasets.ResizeExample,
        datasets.ResizedExample,
        Rejected,
    ),
    _command(
        "exploreDataset",
        s.CMD_DATASETS_EXPLORE,
        datasets.ExploreDataset,
        datasets.ExploredPage,
        Rejected,
    ),
    _command(
        "getDatasetRecord",
        s.CMD_DATASETS_RECORD,
        datasets.GetDatasetRecord,
        datasets.DatasetRecord,
        Rejected,
    ),
    _command("createModel", s.CMD_MODELS_CREATE, models.CreateModel),
    _command("abortModel", s.CMD_MODELS_ABORT, models.AbortModel),
    _command("deleteModel", s.CMD_MODELS_DELETE, models.DeleteModel),
    _command("editModel", s.CMD_MODELS_EDIT, models.EditModel),
    _command("createPretrainedModel", s.CMD_MODELS_PRETRAINED, models.CreatePretrainedModel),
    _command("makePretrained", s.CMD_MODELS_TO_PRETRAINED, models.MakePretrained),
    _command(
        "customizeNetwork",
        s.CMD_MODELS_CUSTOMIZE,
        models.CustomizeNetwork,
        models.NetworkSource,
        Rejected,
    ),
    _command(
        "visualizeNetwork",
        s.CMD_MODELS_VISUALIZE,
        models.VisualizeNetwork,
        models.NetworkGraph,
        Rejected,
    ),
    _command(
        "classifyOne",
        s.CMD_INFERENCE_CLASSIFY_ONE,
        inference.ClassifyOne,
        inference.Classified,
        Rejected,
    ),
    _command(
        "exportModel", s.CMD_INFERENCE_EXPORT, inference.ExportModel, inference.Exported, Rejected
    ),
    _command(
        "classifyMany",
        s.CMD_INFERENCE_CLASSIFY_MANY,
        inference.ClassifyMany,
        inference.ClassifiedMany,
        inference.ClassifyManyQueued,
        Rejected,
    ),
    _command("acquireLease", s.CMD_GPUS_ACQUIRE, gpus.AcquireLease, gpus.LeaseAccepted, Rejected),
    _command("renewLease", s.CMD_GPUS_RENEW, gpus.RenewLease, gpus.LeaseAccepted, Rejected),
    _command("releaseLease", s.CMD_GPUS_RELEASE, gpus.ReleaseLease),
    Channel(
        "nodeLeaseCommands",
        s.gpus_node_command(_param("node_id"), _param("verb")),
        _members(gpus.GpuCommands),
        "A lease command for one node's broker (verb: acquire, renew, release).",
        (gpus.LeaseAccepted, Accepted, Rejected),
    ),
)


def _matches(pattern: str, subject: str) -> bool:
    """NATS wildcard match: `*` one token, `>` the rest (one token at least)."""
    want, have = pattern.split("."), subject.split(".")
    for i, token in enumerate(want):
        if token == ">":
            return len(have) > i
        if i >= len(have) or (token not in ("*", have[i])):
            return False
    return len(want) == len(have)


def sample(address: str) -> str:
    """A concrete subject of a channel address (each parameter filled with one token)."""
    for name in ID_PARAMS:
        address = address.replace(_param(name), "x")
    return address


def stream_of(address: str) -> str | None:
    """The JetStream stream that stores a channel's messages (None: core NATS only)."""
    subject = sample(address)
    return next((st for st, flt in STREAMS.items() if _matches(flt, subject)), None)


def publishers(address: str) -> list[str]:
    """The services the permission table lets publish on this channel."""
    subject = sample(address)
    return sorted(
        g.user
        for g in TABLE.values()
        if any(_matches(p, subject) for p in g.publish)
        and not any(_matches(p, subject) for p in g.deny_publish)
    )


def _reads(right: str, stream: str) -> bool:
    """A JetStream API right that reads messages of `stream` (a get or a consumer; not its
    info, which every service may read)."""
    tokens = right.split(".")
    return stream in tokens and bool({"GET", "CONSUMER"} & set(tokens))


def receivers(channel: Channel) -> list[str]:
    """The services that receive this channel's messages: a work queue's consumer; else core
    subscribers (command endpoints, watches) and the services with read rights on its stream."""
    address = channel.address
    subject, stream = sample(address), stream_of(address)
    if channel.consumer:
        return [DURABLES[(s.STREAM_WORK, channel.consumer)]]
    found = set()
    for g in TABLE.values():
        if any(_matches(p, subject) for p in g.subscribe):
            found.add(g.user)
        if stream and any(_reads(right, stream) for right in g.publish):
            found.add(g.user)
    return sorted(found - set(publishers(address)) if stream is None else found)


def _name(message: type) -> str:
    return message.__name__


def _summary(message: type) -> str:
    return (message.__doc__ or "").strip().splitlines()[0]


def _message(message: type) -> dict[str, Any]:
    tag = tag_of(message)
    version = REGISTRY.version(tag)
    return {
        "name": _name(message),
        "title": _name(message),
        "summary": _summary(message),
        "contentType": "application/json",
        "headers": {
            "type": "object",
            "properties": {
                headers.SCHEMA: {"type": "string", "const": f"{tag}/{version}"},
                headers.MSG_ID: {"type": "string"},
                headers.CORRELATION_ID: {"type": "string"},
                headers.CAUSATION_ID: {"type": "string"},
            },
        },
        "payload": {"$ref": COMPONENT_REF.format(name=_name(message))},
        "x-digits-tag": tag,
        "x-digits-version": version,
        "x-digits-schema-file": f"messages/{_name(message)}.json",
    }


def _channel(channel: Channel) -> dict[str, Any]:
    params = [name for name in ID_PARAMS if _param(name) in channel.address]
    out: dict[str, Any] = {"address": channel.address, "description": channel.description}
    if params:
        out["parameters"] = {name: {"description": ID_PARAMS[name]} for name in params}
    out["messages"] = {
        _name(m): {"$ref": f"#/components/messages/{_name(m)}"} for m in channel.messages
    }
    out["x-digits-stream"] = stream_of(channel.address)
    out["x-digits-publishers"] = publishers(channel.address)
    out["x-digits-receivers"] = receivers(channel)
    return out


def _reply_channel(channel: Channel) -> dict[str, Any]:
    return {
        "address": None,  # the requester's inbox (NATS request/reply)
        "description": f"Replies to {_name(channel.messages[0])}.",
        "messages": {
            _name(m): {"$ref": f"#/components/messages/{_name(m)}"} for m in channel.replies
        },
    }


def _operation(channel: Channel) -> dict[str, Any]:
    def refs(chan: str, messages: tuple[type, ...]) -> list[dict[str, str]]:
        return [{"$ref": f"#/channels/{chan}/messages/{_name(m)}"} for m in messages]

    op: dict[str, Any] = {
        # From the system's side: it sends events and tickets, it receives commands.
        "action": "receive" if channel.replies else "send",
        "channel": {"$ref": f"#/channels/{channel.id}"},
        "summary": channel.description,
        "messages": refs(channel.id, channel.messages),
    }
    if channel.replies:
        reply_id = f"{channel.id}Reply"
        op["reply"] = {
            "channel": {"$ref": f"#/channels/{reply_id}"},
            "messages": refs(reply_id, channel.replies),
        }
    return op


def document() -> dict[str, Any]:
    """The AsyncAPI 3 document, as plain data."""
    _, schemas = msgspec.json.schema_components(ALL_MESSAGES, ref_template=COMPONENT_REF)
    channels: dict[str, Any] = {}
    for channel in CHANNELS:
        channels[channel.id] = _channel(channel)
        if channel.replies:
            channels[f"{channel.id}Reply"] = _reply_channel(channel)
    return {
        "asyncapi": ASYNCAPI,
        "info": {
            "title": "DIGITS event catalogue",
            "version": "1",
            "description": (
                "Every subject on the DIGITS bus (NATS JetStream), the messages on it, the stream "
                "that stores it and the services that publish and receive it. Each message is "
                "JSON, tagged by its `type` field; each stored one carries `Digits-Schema: "
                "<tag>/<version>` (none means version 1). Readers ignore fields they do not know."
            ),
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": {c.id: _operation(c) for c in CHANNELS},
        "components": {
            "messages": {_name(m): _message(m) for m in sorted(ALL_MESSAGES, key=_name)},
            "schemas": schemas,
        },
    }


def message_schema(message: type) -> dict[str, Any]:
    """One message's standalone JSON Schema (its nested shapes under `$defs`)."""
    schema = msgspec.json.schema(message)
    tag = tag_of(message)
    return {
        "$schema": JSON_SCHEMA,
        "$id": f"messages/{_name(message)}.json",
        "x-digits-schema": f"{tag}/{REGISTRY.version(tag)}",
        **schema,
    }


def render() -> dict[str, str]:
    """Every file of the catalogue: relative path → text, exactly as committed."""
    import yaml  # only the generator needs it: the contract itself imports msgspec alone

    files = {
        "asyncapi.yaml": yaml.safe_dump(document(), sort_keys=False, allow_unicode=True, width=100),
    }
    for message in ALL_MESSAGES:
        text = json.dumps(message_schema(message), indent=1, ensure_ascii=False) + "\n"
        files[f"messages/{_name(message)}.json"] = text
    return files


def write(folder: Path) -> list[str]:
    """Write the catalogue into `folder`, removing message schemas no longer generated."""
    files = render()
    old = folder / "messages"
    for stale in old.glob("*.json") if old.is_dir() else []:
        if f"messages/{stale.name}" not in files:
            stale.unlink()
    for path, text in files.items():
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return sorted(files)


if __name__ == "__main__":
    written = write(Path(sys.argv[1] if len(sys.argv) > 1 else "proto/schema"))
    sys.stdout.write(f"{len(written)} files written\n")
