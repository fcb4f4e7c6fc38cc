"""Every subject pattern of the bus as a channel: its messages and, for a command, its replies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from digits_proto import datasets, gpus, inference, models, users
from digits_proto import subjects as s
from digits_proto.replies import Accepted, Rejected

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
    """The types of a message union, less those that travel on another subject."""
    return tuple(t for t in union.__args__ if t not in without)


def _command(id: str, subject: str, command: type, *replies: type) -> Channel:
    doc = (command.__doc__ or "").strip().splitlines()[0]
    return Channel(id, subject, (command,), doc, replies or (Accepted, Rejected))


def _query(id: str, subject: str, command: type, *answers: type) -> Channel:
    """A command answered with what it asked for, or Rejected."""
    return _command(id, subject, command, *answers, Rejected)


def _work(id: str, subject: str, ticket: type, description: str, consumer: str) -> Channel:
    """A work queue of tickets that its owner's durable consumer alone takes."""
    return Channel(id, subject, (ticket,), description, consumer=consumer)


def param(name: str) -> str:
    """`{name}`: a parameter as a channel address spells it (AsyncAPI)."""
    return "{" + name + "}"


CHANNELS: tuple[Channel, ...] = (
    Channel(
        "datasetEvents",
        s.dataset_events(param("dataset_id")),
        _members(datasets.DatasetEvents, datasets.DatasetProgressed),
        "The history of one dataset: its aggregate's events, oldest first.",
    ),
    Channel(
        "modelEvents",
        s.model_events(param("model_id")),
        _members(models.ModelEvents, models.TrainingProgressed),
        "The history of one model job (trained or pretrained): its aggregate's events.",
    ),
    Channel(
        "modelMetrics",
        s.model_metrics(param("model_id")),
        (models.MetricsRecorded,),
        "Every point of a model's training series, kept until the job is deleted.",
    ),
    Channel(
        "modelProgress",
        s.model_progress(param("model_id")),
        (models.TrainingProgressed,),
        "A training job's latest progress (only the last few are kept).",
    ),
    Channel(
        "datasetProgress",
        s.dataset_progress(param("dataset_id")),
        (datasets.DatasetProgressed,),
        "A dataset build's latest progress (only the last few are kept).",
    ),
    Channel(
        "gpuEvents",
        s.gpu_events(param("node_id")),
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
        s.telemetry(param("node_id")),
        (gpus.TelemetrySampled,),
        "Live device telemetry, about once a second (core NATS: not stored).",
    ),
    Channel(
        "userEvents",
        s.user_events(param("username")),
        _members(users.UserEvents),
        "One account's history (the gateway owns accounts; secrets travel only as hashes).",
    ),
    _work(
        "buildDatasetWork",
        s.WORK_BUILD_DATASET,
        datasets.BuildDatasetTicket,
        "Tickets for dataset builds (work queue; one worker takes each).",
        s.CONSUMER_DATASET_BUILDER,
    ),
    _work(
        "trainModelWork",
        s.WORK_TRAIN_MODEL,
        models.TrainModelTicket,
        "Tickets for training jobs (work queue; redelivered if the trainer dies).",
        s.CONSUMER_TRAINER,
    ),
    _work(
        "classifyManyWork",
        s.WORK_CLASSIFY_MANY,
        inference.ClassifyManyTicket,
        "Tickets for background classify-many jobs (work queue).",
        s.CONSUMER_CLASSIFIER,
    ),
    _command("createDataset", s.CMD_DATASETS_CREATE, datasets.CreateDataset),
    _command("abortDataset", s.CMD_DATASETS_ABORT, datasets.AbortDataset),
    _command("deleteDataset", s.CMD_DATASETS_DELETE, datasets.DeleteDataset),
    _command("editDataset", s.CMD_DATASETS_EDIT, datasets.EditDataset),
    _query(
        "resizeExample",
        s.CMD_DATASETS_RESIZE_EXAMPLE,
        datasets.ResizeExample,
        datasets.ResizedExample,
    ),
    _query(
        "exploreDataset", s.CMD_DATASETS_EXPLORE, datasets.ExploreDataset, datasets.ExploredPage
    ),
    _query(
        "getDatasetRecord", s.CMD_DATASETS_RECORD, datasets.GetDatasetRecord, datasets.DatasetRecord
    ),
    _command("createModel", s.CMD_MODELS_CREATE, models.CreateModel),
    _command("abortModel", s.CMD_MODELS_ABORT, models.AbortModel),
    _command("deleteModel", s.CMD_MODELS_DELETE, models.DeleteModel),
    _command("editModel", s.CMD_MODELS_EDIT, models.EditModel),
    _command("createPretrainedModel", s.CMD_MODELS_PRETRAINED, models.CreatePretrainedModel),
    _command("makePretrained", s.CMD_MODELS_TO_PRETRAINED, models.MakePretrained),
    _query(
        "customizeNetwork", s.CMD_MODELS_CUSTOMIZE, models.CustomizeNetwork, models.NetworkSource
    ),
    _query(
        "visualizeNetwork", s.CMD_MODELS_VISUALIZE, models.VisualizeNetwork, models.NetworkGraph
    ),
    _query(
        "classifyOne", s.CMD_INFERENCE_CLASSIFY_ONE, inference.ClassifyOne, inference.Classified
    ),
    _query("exportModel", s.CMD_INFERENCE_EXPORT, inference.ExportModel, inference.Exported),
    _query(
        "classifyMany",
        s.CMD_INFERENCE_CLASSIFY_MANY,
        inference.ClassifyMany,
        inference.ClassifiedMany,
        inference.ClassifyManyQueued,
    ),
    _query("acquireLease", s.CMD_GPUS_ACQUIRE, gpus.AcquireLease, gpus.LeaseAccepted),
    _query("renewLease", s.CMD_GPUS_RENEW, gpus.RenewLease, gpus.LeaseAccepted),
    _command("releaseLease", s.CMD_GPUS_RELEASE, gpus.ReleaseLease),
    Channel(
        "nodeLeaseCommands",
        s.gpus_node_command(param("node_id"), param("verb")),
        _members(gpus.GpuCommands),
        "A lease command for one node's broker (verb: acquire, renew, release).",
        (gpus.LeaseAccepted, Accepted, Rejected),
    ),
)
