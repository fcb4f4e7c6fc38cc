"""`digits events [--follow] [--job ID]`: what happens on the system, as the gateway relays it.

The gateway's event API (`/api/v1/events`: the bus's envelopes, JSON pages or SSE) when the
server has it, else the web UI's live streams (`/events`, `/jobs/<id>/events`). `--json` prints
one JSON object a line, so a script can read them as they come.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import httpx

from digits_cli.client import sse
from digits_cli.client.api import DONE, UNREACHABLE, Api, CliError
from digits_cli.commands._common import Context, json_flag

API = "/api/v1/events"
SSE = {"Accept": "text/event-stream"}
RECONNECTS = 5
RECONNECT_DELAY = 2.0  # seconds, as the gateway's `retry:` asks


def _has_event_api(api: Api) -> bool:
    try:
        api.get(API, params={"limit": 1})
    except CliError as e:
        if "404" in str(e):
            return False
        raise
    return True


def _line(ctx: Context, event: dict[str, Any]) -> None:
    if ctx.as_json:
        sys.stdout.write(json.dumps(event, default=str) + "\n")
    else:
        kind = event.get("type") or event.get("event")
        rest = event.get("payload", event.get("data"))
        when = event.get("time", "")
        text = json.dumps(rest, default=str) if not isinstance(rest, str) else rest
        sys.stdout.write(f"{when} {kind} {text[:200]}".strip() + "\n")
    sys.stdout.flush()


def _query(args: argparse.Namespace) -> dict[str, Any]:
    query: dict[str, Any] = {} if args.after is None else {"after": args.after}
    if args.job:
        query["job"] = args.job
    if args.stream:
        query["stream"] = args.stream
    return query


def _print_message(ctx: Context, message: sse.Message) -> None:
    try:
        data: Any = json.loads(message.data)
    except ValueError:
        data = message.data
    if message.event in ("message", "event") and isinstance(data, dict):
        _line(ctx, data)
    else:
        _line(ctx, {"event": message.event, "id": message.id, "data": data})


def _follow_sse(ctx: Context, path: str, params: dict[str, Any]) -> None:
    """Print each message as it comes, until Ctrl-C. A dropped stream is opened again from the
    last message's id (`Last-Event-ID`: no gap, no repeat); RECONNECTS failures in a row end it."""
    last_id: str | None = None
    failures = 0
    while True:
        headers = {**SSE, **({"Last-Event-ID": last_id} if last_id else {})}
        try:
            with ctx.api.stream("GET", path, params=params, headers=headers, timeout=None) as r:
                for message in sse.messages(r.iter_lines()):
                    last_id, failures = message.id or last_id, 0
                    _print_message(ctx, message)
        except CliError as e:
            if not isinstance(e.__cause__, httpx.TransportError) or failures >= RECONNECTS:
                raise
        failures += 1
        if failures > RECONNECTS:
            raise CliError(f"{path}: the stream ended {RECONNECTS} times in a row", UNREACHABLE)
        time.sleep(RECONNECT_DELAY)


def events(ctx: Context, args: argparse.Namespace) -> int:
    """The events so far (a page), or every one as it happens with --follow."""
    try:
        if _has_event_api(ctx.api):
            if args.follow:
                _follow_sse(ctx, API, _query(args))
                return DONE
            body = ctx.api.json("GET", API, params={**_query(args), "limit": args.limit})
            for event in body.get("events", []):
                _line(ctx, event)
            return DONE
        path = f"/jobs/{args.job}/events" if args.job else "/events"
        if args.follow:
            _follow_sse(ctx, path, {})
        else:  # the legacy streams open with a `history` message: print it and stop
            with ctx.api.stream("GET", path, headers=SSE, timeout=None) as response:
                for message in sse.messages(response.iter_lines()):
                    _line(ctx, {"event": message.event, "data": json.loads(message.data)})
                    break
    except KeyboardInterrupt:
        pass
    return DONE


def register(verbs: argparse._SubParsersAction) -> None:
    """`events`."""
    parser = verbs.add_parser(
        "events",
        parents=[json_flag()],
        help="the system's events (one a line); --follow for live ones",
    )
    parser.add_argument("--follow", "-f", action="store_true", help="keep printing new events")
    parser.add_argument("--job", help="only this job's events")
    parser.add_argument("--stream", help="only this stream's events (DIGITS_MODELS...)")
    parser.add_argument("--after", type=int, help="start after this sequence (of --stream)")
    parser.add_argument("--limit", type=int, default=100, help="events in one page")
    parser.set_defaults(verb_fn=events)
