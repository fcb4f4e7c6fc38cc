"""Follow DIGITS training runs on NATS and write every metric point to a CSV file.

Standalone: it needs only nats-py and msgspec (`pip install nats-py msgspec`) and consumer
credentials (`digits consumer-creds NAME` on the server prints where they are). What it reads is
described by the published catalogue, proto/schema/ (`digits.metrics.<model_id>` on stream
DIGITS_METRICS carries `models.MetricsRecorded`; `digits.evt.models.<model_id>` on DIGITS_MODELS
the job's life, ending with TrainingCompleted, TrainingFailed or ModelAborted).

    python metrics_to_csv.py --server nats://127.0.0.1:4222 --creds consumer-me.json \\
        --out metrics.csv [--job MODEL_ID --until-done] [--durable NAME]

Columns: model_id, epoch, name (`<phase>.<metric>`, e.g. train.loss), value, time.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import sys
from pathlib import Path
from typing import Any

import msgspec
import nats
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

METRICS_STREAM = "DIGITS_METRICS"
MODELS_STREAM = "DIGITS_MODELS"
END_TYPES = {"models.TrainingCompleted", "models.TrainingFailed", "models.ModelAborted"}
# The catalogue beside this script in a DIGITS checkout (optional: --schema points elsewhere).
SCHEMA_DIR = Path(__file__).resolve().parent.parent / "proto" / "schema" / "messages"
KNOWN_VERSION = 1  # the version of models.MetricsRecorded this script was written for


class MetricsRecorded(msgspec.Struct):
    """proto/schema/messages/MetricsRecorded.json (fields this script uses)."""

    model_id: str
    epoch: float
    iteration: int
    phase: str
    values: dict[str, float]
    occurred_at: str = ""


class Tagged(msgspec.Struct):
    """Any event: only its type."""

    type: str = ""


def check_schema(folder: Path) -> None:
    """Refuse to run if the catalogue's MetricsRecorded lost a field this script reads."""
    file = folder / "MetricsRecorded.json"
    if not file.exists():
        return  # no catalogue here: trust the declared structs
    schema: dict[str, Any] = json.loads(file.read_text())
    props = schema["$defs"]["MetricsRecorded"]["properties"]
    missing = {"model_id", "epoch", "iteration", "phase", "values"} - set(props)
    if missing:
        raise SystemExit(f"{file} no longer has {sorted(missing)}: update this script")


def version_of(headers: dict[str, str] | None) -> int:
    """The `Digits-Schema: <type>/<n>` header's n (no header: version 1)."""
    _, _, number = (headers or {}).get("Digits-Schema", "").rpartition("/")
    return int(number) if number.isdigit() else 1


async def follow(args: argparse.Namespace) -> int:
    creds = json.loads(Path(args.creds).read_text())
    nc = await nats.connect(
        args.server,
        user=creds["user"],
        password=creds["password"],
        inbox_prefix=f"_INBOX.{creds['user']}",  # the only inbox these credentials may read
    )
    js = nc.jetstream()
    job = args.job or "*"
    durable = args.durable or None
    metrics = await js.pull_subscribe(
        f"digits.metrics.{job}",
        durable=durable,
        stream=METRICS_STREAM,
        config=ConsumerConfig(
            deliver_policy=DeliverPolicy.ALL,
            # A durable consumer remembers what was written (acks); an ephemeral one starts over.
            ack_policy=AckPolicy.EXPLICIT if durable else AckPolicy.NONE,
            inactive_threshold=None if durable else 60.0,
        ),
    )
    ends = None
    if args.until_done:
        ends = await js.pull_subscribe(
            f"digits.evt.models.{args.job}",
            stream=MODELS_STREAM,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.NONE),
        )
    out = Path(args.out)
    new_file = not out.exists() or out.stat().st_size == 0
    ended = ""
    with out.open("a", newline="") as f:
        writer = csv.writer(f)
        if new_file:
            writer.writerow(["model_id", "epoch", "name", "value", "time"])
        while True:
            try:
                batch = await metrics.fetch(256, timeout=1.0)
            except TimeoutError:
                batch = []
            for msg in batch:
                if version_of(msg.headers) > KNOWN_VERSION:
                    sys.stderr.write(f"warning: {msg.subject} has a newer schema\n")
                point = msgspec.json.decode(msg.data, type=MetricsRecorded)
                for name, value in sorted(point.values.items()):
                    row = [point.model_id, point.epoch, f"{point.phase}.{name}", value]
                    writer.writerow([*row, point.occurred_at])
                if durable:
                    await msg.ack()
            f.flush()
            if ends is not None and not ended:
                ended = await job_end(ends)
            if ended and not batch and (await metrics.consumer_info()).num_pending == 0:
                sys.stdout.write(f"{args.job} ended ({ended}): every point written to {out}\n")
                await nc.close()
                return 0


async def job_end(ends: Any) -> str:
    """The end event's type if the job has ended by now, else ""."""
    try:
        msgs = await ends.fetch(64, timeout=0.5)
    except TimeoutError:
        return ""
    for msg in msgs:
        kind = msgspec.json.decode(msg.data, type=Tagged).type
        if kind in END_TYPES:
            return kind
    return ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", required=True, help="nats://host:port")
    parser.add_argument("--creds", required=True, help="the consumer's credentials file (JSON)")
    parser.add_argument("--out", required=True, help="CSV file (appended to)")
    parser.add_argument("--job", help="one model's id (default: every model)")
    parser.add_argument("--until-done", action="store_true", help="exit when --job has ended")
    parser.add_argument("--durable", help="a durable consumer name: a restart resumes")
    parser.add_argument("--schema", default=str(SCHEMA_DIR), help="proto/schema/messages")
    args = parser.parse_args()
    if args.until_done and not args.job:
        parser.error("--until-done needs --job")
    check_schema(Path(args.schema))
    try:
        return asyncio.run(follow(args))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
