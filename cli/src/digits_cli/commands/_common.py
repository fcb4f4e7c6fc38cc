"""What every user verb shares: the `--json` flag, the API client, output as a table or JSON,
and the one place where a failure becomes a one-line message and an exit code."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.table import Table

from digits_cli.client import config
from digits_cli.client.api import DONE, INTERRUPTED, USAGE, Api, CliError

Verb = Callable[["Context", argparse.Namespace], int]


@dataclass
class Context:
    """One invocation: the client, where progress goes (stderr), whether stdout is JSON."""

    api: Api
    err: Console
    as_json: bool

    def print_json(self, data: Any) -> None:
        """Machine-readable output: one JSON document on stdout."""
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
        sys.stdout.flush()

    def say(self, text: str) -> None:
        """A line for people (stderr with --json, so stdout stays one JSON document)."""
        if self.as_json:
            self.err.print(text, highlight=False)
        else:
            Console(highlight=False).print(text)


def print_ended(ctx: Context, kind: str, job: dict[str, Any]) -> None:
    """A followed job that ended (`kind`: dataset or model): its JSON, or its status, its page
    and its error."""
    if ctx.as_json:
        ctx.print_json(job)
        return
    ctx.say(f"{job['status']}: {ctx.api.login.url}/{kind}s/{job['id']}")
    if job.get("error"):
        ctx.say(f"error: {job['error']}")


def json_flag() -> argparse.ArgumentParser:
    """A parent parser giving a verb `--json`."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--json", action="store_true", help="print JSON on stdout (for scripts)")
    return parent


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str], title: str = "") -> None:
    """Rows as a table on stdout."""
    view = Table(title=title or None)
    for column in columns:
        view.add_column(column)
    for row in rows:
        view.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in columns))
    Console().print(view)


def run_verb(verb: Verb, args: argparse.Namespace) -> int:
    """Run a verb against the stored login; a failure is one line on stderr and its code."""
    err = Console(stderr=True, highlight=False)
    api = Api(config.load())
    try:
        return verb(Context(api=api, err=err, as_json=getattr(args, "json", False)), args)
    except CliError as e:
        return _fail(str(e), e.code)
    except FileNotFoundError as e:
        return _fail(f"no such file: {e.filename}", USAGE)
    except BrokenPipeError:  # `digits events -f | head`: the reader left, which is fine
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return DONE
    except KeyboardInterrupt:  # what runs on the server goes on; say so rather than a traceback
        return _fail("interrupted (a job it started keeps running: digits jobs list)", INTERRUPTED)
    finally:
        api.close()


def _fail(message: str, code: int) -> int:
    """One line on stderr, never wrapped (scripts grep it), and the exit code."""
    sys.stderr.write(f"digits: {' '.join(message.split())}\n")
    return code


def pages(api: Api, path: str) -> list[dict[str, Any]]:
    """Every job of a paged `/api/v1` list (`next` links the pages)."""
    jobs: list[dict[str, Any]] = []
    url: str | None = path
    while url:
        body = api.json("GET", url)
        jobs.extend(body["jobs"])
        url = body.get("next")
    return jobs


def job_kind(api: Api, job_id: str) -> str:
    """`dataset` or `model` (or `pretrained_model`): what the job with this id is."""
    status = api.json("GET", f"/jobs/{job_id}/status")
    if status.get("error") == "Job not found.":
        raise CliError(f"no job {job_id}", USAGE)
    kinds = {
        "Image Classification Dataset": "dataset",
        "Image Classification Model": "model",
        "Pretrained Model": "pretrained_model",
    }
    return kinds.get(status["type"], "model")
