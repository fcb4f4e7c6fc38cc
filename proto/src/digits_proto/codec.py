"""One encoder and one decoder per message union, created once."""

from __future__ import annotations

from typing import Any

import msgspec

from digits_proto.datasets import DatasetCommands, DatasetEvents
from digits_proto.gpus import GpuCommands, GpuEvents, LeaseAccepted, TelemetrySampled
from digits_proto.inference import Classified, InferenceCommands
from digits_proto.models import MetricEvents, ModelCommands, ModelEvents
from digits_proto.replies import Accepted, Rejected

encoder = msgspec.json.Encoder()

dataset_events = msgspec.json.Decoder(DatasetEvents)
model_events = msgspec.json.Decoder(ModelEvents)
metric_events = msgspec.json.Decoder(MetricEvents)
gpu_events = msgspec.json.Decoder(GpuEvents)
telemetry = msgspec.json.Decoder(TelemetrySampled)

dataset_commands = msgspec.json.Decoder(DatasetCommands)
model_commands = msgspec.json.Decoder(ModelCommands)
gpu_commands = msgspec.json.Decoder(GpuCommands)
inference_commands = msgspec.json.Decoder(InferenceCommands)

command_reply = msgspec.json.Decoder(Accepted | Rejected)
# Acquire and renew answer LeaseAccepted, release answers Accepted (stream/seq of LeaseReleased).
lease_reply = msgspec.json.Decoder(LeaseAccepted | Accepted | Rejected)
classify_reply = msgspec.json.Decoder(Classified | Rejected)


def encode(message: Any) -> bytes:
    """Encode any bus message as JSON."""
    return encoder.encode(message)
