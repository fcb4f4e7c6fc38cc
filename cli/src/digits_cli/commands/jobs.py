"""`digits jobs list|show|abort|delete|clone`: any job, dataset or model alike."""

from __future__ import annotations

import argparse

from digits_cli.client.api import DONE
from digits_cli.client.follow import follow
from digits_cli.commands._common import Context, job_kind, json_flag, pages, table

FORMS = {
    "dataset": ("/datasets/images/classification.json", "dataset_name"),
    "model": ("/models/images/classification.json", "model_name"),
}


def list_jobs(ctx: Context, args: argparse.Namespace) -> int:
    """Datasets and models, oldest first."""
    jobs = pages(ctx.api, "/api/v1/jobs")
    if args.status:
        jobs = [j for j in jobs if j["status"] == args.status]
    if ctx.as_json:
        ctx.print_json(jobs)
    else:
        table(jobs, ["id", "type", "name", "status", "progress", "username", "created"], "jobs")
    return DONE


def show(ctx: Context, args: argparse.Namespace) -> int:
    """One job's JSON; with --follow, its progress until it ends (the exit code says how)."""
    kind = job_kind(ctx.api, args.id)
    if args.follow and kind in ("dataset", "model"):
        code, job = follow(ctx.api, kind, args.id, ctx.err, quiet=ctx.as_json)
    else:
        code, job = DONE, ctx.api.json("GET", f"/{kind}s/{args.id}.json")
    if ctx.as_json:
        ctx.print_json(job)
        return code
    ctx.say(f"{job['name']} ({job['id']}, {kind}): {job['status']}")
    for key in ("progress", "epoch", "train_epochs", "snapshots", "dataset_id", "error"):
        if job.get(key) not in (None, [], ""):
            ctx.say(f"  {key}: {job[key]}")
    ctx.say(f"  {ctx.api.login.url}/{kind}s/{job['id']}")
    return code


def abort(ctx: Context, args: argparse.Namespace) -> int:
    """Stop a running build or training."""
    ctx.api.post(f"/jobs/{args.id}/abort")
    ctx.print_json({"id": args.id, "aborted": True}) if ctx.as_json else ctx.say("Job aborted.")
    return DONE


def delete(ctx: Context, args: argparse.Namespace) -> int:
    """Delete a job and what it made."""
    ctx.api.delete(f"/jobs/{args.id}")
    ctx.print_json({"id": args.id, "deleted": True}) if ctx.as_json else ctx.say("Job deleted.")
    return DONE


def clone(ctx: Context, args: argparse.Namespace) -> int:
    """A new job with the same settings (DIGITS's Clone), optionally renamed."""
    kind = job_kind(ctx.api, args.id)
    route, name_field = FORMS.get(kind, FORMS["model"])
    fields = {"clone": args.id, **({name_field: args.name} if args.name else {})}
    created = ctx.api.json("POST", route, data=fields)
    ref = {k: created[k] for k in ("id", "name", "status")}
    ctx.print_json(ref) if ctx.as_json else ctx.say(f"{kind} {ref['id']} ({ref['name']})")
    return DONE


def register(verbs: argparse._SubParsersAction) -> None:
    """`jobs list|show|abort|delete|clone`."""
    group = verbs.add_parser("jobs", help="list, show, abort, delete or clone any job")
    sub = group.add_subparsers(dest="jobs_verb", required=True)
    flag = json_flag()
    every = sub.add_parser("list", parents=[flag], help="every job")
    every.add_argument("--status", help="only jobs in this status (Running, Done...)")
    every.set_defaults(verb_fn=list_jobs)
    one = sub.add_parser("show", parents=[flag], help="one job (--follow: until it ends)")
    one.add_argument("id")
    one.add_argument("--follow", "-f", action="store_true")
    one.set_defaults(verb_fn=show)
    for name, fn, text in (("abort", abort, "stop a job"), ("delete", delete, "delete a job")):
        parser = sub.add_parser(name, parents=[flag], help=text)
        parser.add_argument("id")
        parser.set_defaults(verb_fn=fn)
    again = sub.add_parser("clone", parents=[flag], help="a new job with the same settings")
    again.add_argument("id")
    again.add_argument("--name", help="the new job's name (default: the source's)")
    again.set_defaults(verb_fn=clone)
