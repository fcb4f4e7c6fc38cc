"""Post a JSON message to a webhook URL whenever a DIGITS job ends (Done, Error or Aborted).

Standalone: it needs only httpx (`pip install httpx`) and an API token of a DIGITS account (the
web UI's account page, or `POST /api/v1/tokens`). It follows the gateway's event feed,
`GET /api/v1/events` as server-sent events, so it works wherever the web UI does: no NATS. The
events are those of the published catalogue (proto/schema/): a model ends with
`models.TrainingCompleted`, `models.TrainingFailed` or `models.ModelAborted`, a dataset with
`datasets.DatasetBuilt`, `datasets.DatasetFailed` or `datasets.DatasetAborted`.

    DIGITS_TOKEN=... python webhook_on_job_end.py --url http://digits:5000 \\
        --webhook https://hooks.example/digits [--state cursor.txt] [--exit-after N]

Each post: {"job_id", "kind", "status", "event", "time", "correlation_id", "error"}. With
--state the feed's cursor is kept in a file, so a restart neither misses nor repeats a job;
without one it starts with what happens next.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ENDS = {
    "models.TrainingCompleted": ("model", "Done"),
    "models.TrainingFailed": ("model", "Error"),
    "models.ModelAborted": ("model", "Aborted"),
    "datasets.DatasetBuilt": ("dataset", "Done"),
    "datasets.DatasetFailed": ("dataset", "Error"),
    "datasets.DatasetAborted": ("dataset", "Aborted"),
}
RECONNECT_SECONDS = 2.0


def message(event: dict[str, Any]) -> dict[str, Any] | None:
    """The webhook's body for an event that ends a job, else None."""
    end = ENDS.get(event["type"])
    if end is None:
        return None
    kind, status = end
    payload = event["payload"]
    return {
        "job_id": payload.get("model_id") or payload.get("dataset_id"),
        "kind": kind,
        "status": status,
        "event": event["type"],
        "time": event["time"],
        "correlation_id": event.get("correlation_id"),
        "error": payload.get("error") or payload.get("reason") or None,
    }


def sse(response: httpx.Response) -> Any:
    """(id, data) of each server-sent event; comments (keepalives) are skipped."""
    event_id, data = None, []
    for line in response.iter_lines():
        if not line:
            if data:
                yield event_id, "\n".join(data)
            data = []
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "id":
            event_id = value
        elif field == "data":
            data.append(value)


def run(args: argparse.Namespace) -> int:
    state = Path(args.state) if args.state else None
    cursor = state.read_text().strip() if state and state.exists() else "end"
    posted = 0
    auth = {"Authorization": f"Bearer {args.token}"}
    with (
        httpx.Client(base_url=args.url, headers=auth, timeout=None) as feed,
        httpx.Client(timeout=10) as hook,
    ):
        while True:
            headers = {"Accept": "text/event-stream"}
            params = {"stream": "models,datasets", "after": cursor}
            if cursor != "end":  # resume exactly after the last event seen
                headers["Last-Event-ID"] = cursor
            try:
                with feed.stream("GET", "/api/v1/events", params=params, headers=headers) as r:
                    if r.status_code != 200:
                        r.read()
                        sys.stderr.write(f"feed refused: {r.status_code} {r.text}\n")
                        return 3
                    sys.stdout.write("following the event feed\n")
                    sys.stdout.flush()
                    for event_id, data in sse(r):
                        body = message(json.loads(data))
                        if body is not None:
                            hook.post(args.webhook, json=body).raise_for_status()
                            posted += 1
                        cursor = event_id or cursor
                        if state:
                            state.write_text(cursor)
                        if args.exit_after and posted >= args.exit_after:
                            return 0
            except httpx.TransportError as e:
                sys.stderr.write(f"feed interrupted ({e}); reconnecting\n")
            time.sleep(RECONNECT_SECONDS)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="the DIGITS gateway, http://host:port")
    parser.add_argument(
        "--token",
        default=os.environ.get("DIGITS_TOKEN"),
        help="an API token of a DIGITS account (default: $DIGITS_TOKEN, which, unlike an "
        "argument, other users cannot see in the process list)",
    )
    parser.add_argument("--webhook", required=True, help="where to POST each job's end")
    parser.add_argument("--state", help="a file keeping the feed's cursor across restarts")
    parser.add_argument("--exit-after", type=int, default=0, help="stop after N posts")
    args = parser.parse_args()
    if not args.token:
        parser.error("an API token is required: set DIGITS_TOKEN (or --token=TOKEN)")
    try:
        return run(args)
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
