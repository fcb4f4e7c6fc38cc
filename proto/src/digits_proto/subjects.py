"""Every subject, stream, consumer, KV and Object Store bucket name: the only place they are spelled."""

from __future__ import annotations

# --- event streams (one per context; one subject per aggregate instance) ---
STREAM_DATASETS = "DIGITS_DATASETS"
STREAM_MODELS = "DIGITS_MODELS"
STREAM_METRICS = "DIGITS_METRICS"
STREAM_GPUS = "DIGITS_GPUS"
STREAM_WORK = "DIGITS_WORK"
STREAM_USERS = "DIGITS_USERS"
# Latest progress of each job (JetStream keeps the last few per subject): not the jobs' history.
STREAM_PROGRESS = "DIGITS_PROGRESS"

DATASET_EVENTS = "digits.evt.datasets.>"
MODEL_EVENTS = "digits.evt.models.>"
METRIC_EVENTS = "digits.metrics.>"
GPU_EVENTS = "digits.evt.gpus.>"
WORK = "digits.work.>"
USER_EVENTS = "digits.evt.users.>"
PROGRESS_EVENTS = "digits.progress.>"

# Streams the gateway projects into DuckDB (work queues, KV and objects are not projected).
EVENT_STREAMS: dict[str, str] = {
    STREAM_DATASETS: DATASET_EVENTS,
    STREAM_MODELS: MODEL_EVENTS,
    STREAM_METRICS: METRIC_EVENTS,
    STREAM_GPUS: GPU_EVENTS,
    STREAM_USERS: USER_EVENTS,
    STREAM_PROGRESS: PROGRESS_EVENTS,
}


def dataset_events(dataset_id: str) -> str:
    """Subject of one dataset aggregate."""
    return f"digits.evt.datasets.{dataset_id}"


def model_events(model_id: str) -> str:
    """Subject of one model-job aggregate."""
    return f"digits.evt.models.{model_id}"


def model_progress(model_id: str) -> str:
    """Subject of one model job's TrainingProgressed events (only the last few are kept)."""
    return f"digits.progress.models.{model_id}"


def dataset_progress(dataset_id: str) -> str:
    """Subject of one dataset's DatasetProgressed events (only the last few are kept)."""
    return f"digits.progress.datasets.{dataset_id}"


def user_events(username: str) -> str:
    """Subject of one account aggregate (owned by the gateway: identity is set at the edge).

    DIGITS's usernames may hold '.', a subject separator: it is spelled '~', which no username
    holds, so the subject stays one token per account."""
    return f"digits.evt.users.{username.replace('.', '~')}"


def model_metrics(model_id: str) -> str:
    """Subject of one model's training metrics (their own stream: many small events)."""
    return f"digits.metrics.{model_id}"


def gpu_events(node_id: str) -> str:
    """Subject of one node's device and lease events."""
    return f"digits.evt.gpus.{node_id}"


def telemetry(node_id: str) -> str:
    """Core (not persisted) subject of one node's device telemetry."""
    return f"digits.telemetry.{node_id}"


TELEMETRY_ALL = "digits.telemetry.>"


def model_log(model_id: str) -> str:
    """Core request subject: the trainer running this job answers with its raw log so far
    (an empty answer: too big, read the copy in the models bucket)."""
    return f"digits.log.models.{model_id}"


# The device queue as the brokers see it (QueueChanged snapshots). Node ids never start with "_".
GPU_QUEUE_EVENTS = "digits.evt.gpus._queue"


def gpus_node_command(node_id: str, verb: str) -> str:
    """A lease command for one node's broker (`verb`: acquire, renew, release)."""
    return f"digits.cmd.gpus.{node_id}.{verb}"


# --- work queues (tickets for long work; durable pull consumers, explicit ack) ---
WORK_BUILD_DATASET = "digits.work.datasets.build"
WORK_TRAIN_MODEL = "digits.work.models.train"
CONSUMER_DATASET_BUILDER = "datasets-builder"
CONSUMER_TRAINER = "trainer-worker"
WORK_CLASSIFY_MANY = "digits.work.inference.classify_many"
CONSUMER_CLASSIFIER = "inference-classifier"


def readmodel_consumer(stream: str) -> str:
    """Durable consumer name the gateway's projector uses on one event stream."""
    return f"gateway-readmodel-{stream.lower()}"


# --- commands and queries (nats.micro endpoints, queue group `q`) ---
QUEUE_GROUP = "q"
CMD_DATASETS_CREATE = "digits.cmd.datasets.create"
CMD_DATASETS_ABORT = "digits.cmd.datasets.abort"
CMD_DATASETS_DELETE = "digits.cmd.datasets.delete"
CMD_DATASETS_RESIZE_EXAMPLE = "digits.cmd.datasets.resize_example"
CMD_DATASETS_EXPLORE = "digits.cmd.datasets.explore"
CMD_DATASETS_RECORD = "digits.cmd.datasets.record"
CMD_DATASETS_EDIT = "digits.cmd.datasets.edit"
CMD_MODELS_CREATE = "digits.cmd.models.create"
CMD_MODELS_ABORT = "digits.cmd.models.abort"
CMD_MODELS_DELETE = "digits.cmd.models.delete"
CMD_MODELS_CUSTOMIZE = "digits.cmd.models.customize"
CMD_MODELS_VISUALIZE = "digits.cmd.models.visualize"
CMD_MODELS_EDIT = "digits.cmd.models.edit"
CMD_MODELS_PRETRAINED = "digits.cmd.models.pretrained"
CMD_MODELS_TO_PRETRAINED = "digits.cmd.models.to_pretrained"
CMD_INFERENCE_CLASSIFY_ONE = "digits.cmd.inference.classify_one"
CMD_INFERENCE_EXPORT = "digits.cmd.inference.export"
CMD_INFERENCE_CLASSIFY_MANY = "digits.cmd.inference.classify_many"
CMD_GPUS_ACQUIRE = "digits.cmd.gpus.acquire"
CMD_GPUS_RENEW = "digits.cmd.gpus.renew"
CMD_GPUS_RELEASE = "digits.cmd.gpus.release"

# nats.micro service names (also what the gateway pings to know the system is up).
SERVICE_GATEWAY = "digits-gateway"
SERVICE_DATASETS = "digits-datasets"
SERVICE_TRAINER = "digits-trainer"
SERVICE_INFERENCE = "digits-inference"
SERVICE_GPU_BROKER = "digits-gpu-broker"
BACKEND_SERVICES = (SERVICE_DATASETS, SERVICE_TRAINER, SERVICE_INFERENCE, SERVICE_GPU_BROKER)


def inbox_prefix(service: str) -> str:
    """Where a service's replies arrive (set on its connection; its NATS user reads only these)."""
    return f"_INBOX.{service}"


def micro_ping(service: str) -> str:
    """The nats.micro discovery subject answering for every instance of `service`."""
    return f"$SRV.PING.{service}"


# --- KV and Object Store buckets ---
KV_LEASES = "digits-leases"
# Waiting acquire requests (`job.<job_id>`) and live nodes (`node.<node_id>`), each with a TTL.
KV_QUEUE = "digits-queue"
BUCKET_DATASETS = "digits-datasets"
BUCKET_MODELS = "digits-models"
BUCKET_UPLOADS = "digits-uploads"
