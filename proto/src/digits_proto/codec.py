"""One encoder and one decoder per message union, created once."""

from __future__ import annotations

from typing import Any

import msgspec

from digits_proto.datasets import (
    DatasetCommands,
    DatasetEvents,
    DatasetProgressed,
    DatasetRecord,
    ExploredPage,
    ResizedExample,
)
from digits_proto.gpus import GpuCommands, GpuEvents, LeaseAccepted, TelemetrySampled
from digits_proto.inference import (
    Classified,
    ClassifiedMany,
    ClassifyManyQueued,
    ClassifyManyTicket,
    Exported,
    InferenceCommands,
)
from digits_proto.models import (
    MetricEvents,
    ModelCommands,
    ModelEvents,
    NetworkGraph,
    NetworkSource,
    TrainingProgressed,
)
from digits_proto.replies import Accepted, Rejected
from digits_proto.users import UserEvents

encoder = msgspec.json.Encoder()

dataset_events = msgspec.json.Decoder(DatasetEvents)
model_events = msgspec.json.Decoder(ModelEvents)
metric_events = msgspec.json.Decoder(MetricEvents)
gpu_events = msgspec.json.Decoder(GpuEvents)
telemetry = msgspec.json.Decoder(TelemetrySampled)
user_events = msgspec.json.Decoder(UserEvents)
progress_events = msgspec.json.Decoder(TrainingProgressed | DatasetProgressed)

dataset_commands = msgspec.json.Decoder(DatasetCommands)
model_commands = msgspec.json.Decoder(ModelCommands)
gpu_commands = msgspec.json.Decoder(GpuCommands)
inference_commands = msgspec.json.Decoder(InferenceCommands)

command_reply = msgspec.json.Decoder(Accepted | Rejected)
# Acquire and renew answer LeaseAccepted, release answers Accepted (stream/seq of LeaseReleased).
lease_reply = msgspec.json.Decoder(LeaseAccepted | Accepted | Rejected)
classify_reply = msgspec.json.Decoder(Classified | Rejected)
resize_example_reply = msgspec.json.Decoder(ResizedExample | Rejected)
explore_reply = msgspec.json.Decoder(ExploredPage | Rejected)
record_reply = msgspec.json.Decoder(DatasetRecord | Rejected)
export_reply = msgspec.json.Decoder(Exported | Rejected)
classify_many_reply = msgspec.json.Decoder(ClassifiedMany | ClassifyManyQueued | Rejected)
classify_many_ticket = msgspec.json.Decoder(ClassifyManyTicket)
network_source_reply = msgspec.json.Decoder(NetworkSource | Rejected)
network_graph_reply = msgspec.json.Decoder(NetworkGraph | Rejected)


def encode(message: Any) -> bytes:
    """Encode any bus message as JSON."""
    return encoder.encode(message)
