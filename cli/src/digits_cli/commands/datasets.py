"""`digits datasets create|list|show|explore|delete`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from digits_cli.client import uploads
from digits_cli.client.api import DONE, USAGE, CliError
from digits_cli.client.follow import follow
from digits_cli.commands._common import Context, json_flag, pages, print_ended, table

FORM_ROUTE = "/datasets/images/classification.json"


def _form(args: argparse.Namespace) -> dict[str, Any]:
    """The build settings under `/api/v1`'s names (DIGITS's form names differ only in `name`)."""
    return {
        "name": args.name,
        "folder_pct_val": args.pct_val,
        "folder_pct_test": args.pct_test,
        "resize_width": args.width,
        "resize_height": args.height,
        "resize_channels": args.channels,
        "resize_mode": args.resize_mode,
        "encoding": args.encoding,
        "group": args.group,
    }


def _digits_form(fields: dict[str, Any]) -> dict[str, str]:
    """The same settings as DIGITS's multipart form fields."""
    names = {"name": "dataset_name", "group": "group_name"}
    return {names.get(k, k): str(v) for k, v in fields.items() if v not in (None, "")}


def create_from_local(ctx: Context, args: argparse.Namespace, local: Path) -> dict[str, Any]:
    """Upload a local folder or archive, then create the dataset from it."""
    fields = {**_digits_form(_form(args)), "method": "upload"}
    quiet = ctx.as_json
    with uploads.as_archive(local) as archive:
        if uploads.resumable_available(ctx.api):
            upload_id = uploads.upload(ctx.api, archive, "dataset", ctx.err, quiet)
            body = {**_form(args), "method": "upload", "upload_id": upload_id}
            return ctx.api.json("POST", "/api/v1/datasets/", json=body)
        return uploads.post_form_with_file(
            ctx.api, FORM_ROUTE, fields, "upload_archive", archive, ctx.err, quiet
        )


def create(ctx: Context, args: argparse.Namespace) -> int:
    """Create a dataset from a server folder or a local folder/archive, then follow its build."""
    local = Path(args.source)
    if args.server or not (local.is_dir() or uploads.is_archive(local)):
        if not args.server and not local.is_absolute():
            raise CliError(
                f"{args.source!r} is neither a local folder nor an archive; give a server "
                "folder as an absolute path (or --server)",
                USAGE,
            )
        body = {**_form(args), "folder_train": args.source}
        ref = ctx.api.json("POST", "/api/v1/datasets/", json=body)
    else:
        ref = create_from_local(ctx, args, local)
    ctx.err.print(f"dataset {ref['id']} ({ref['name']}): {ref['status']}", highlight=False)
    if args.no_wait:
        if ctx.as_json:
            ctx.print_json(ref)
        return DONE
    code, job = follow(ctx.api, "dataset", ref["id"], ctx.err, quiet=ctx.as_json)
    print_ended(ctx, "dataset", job)
    return code


def list_datasets(ctx: Context, args: argparse.Namespace) -> int:
    """Every dataset, oldest first."""
    jobs = pages(ctx.api, "/api/v1/datasets/")
    if ctx.as_json:
        ctx.print_json(jobs)
    else:
        table(jobs, ["id", "name", "status", "username", "created"], "datasets")
    return DONE


def show(ctx: Context, args: argparse.Namespace) -> int:
    """One dataset's details."""
    data = ctx.api.json("GET", f"/api/v1/datasets/{args.id}")
    if ctx.as_json:
        ctx.print_json(data)
        return DONE
    h, w, c = data["image dimensions"]
    ctx.say(f"{data['name']} ({data['id']}): {data['status']}, {w}×{h}×{c}")
    ctx.say(f"labels: {', '.join(data.get('labels') or [])}")
    splits = [
        {"split": t["split"], "entries": t["entries"], "errors": t["error_count"]}
        for t in data.get("CreateDbTasks", [])
    ]
    table(splits, ["split", "entries", "errors"])
    return DONE


def explore(ctx: Context, args: argparse.Namespace) -> int:
    """A page of a built split: each record's label (and its image, with --save)."""
    query = {"job_id": args.id, "db": args.db, "page": args.page, "size": args.size}
    if args.label is not None:
        query["label"] = args.label
    data = ctx.api.json("GET", "/datasets/images/classification/explore", params=query)
    if args.save:
        folder = Path(args.save)
        for item in data["items"]:
            image = ctx.api.get(item["src"])
            target = folder / item["label"] / f"{item['index']}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(image.content)
    if ctx.as_json:
        ctx.print_json(data)
    else:
        table(data["items"], ["index", "label"], f"{args.db}: {data['total']} records")
    return DONE


def delete(ctx: Context, args: argparse.Namespace) -> int:
    """Delete a dataset (refused while models use it)."""
    data = ctx.api.json("DELETE", f"/api/v1/datasets/{args.id}")
    ctx.print_json(data) if ctx.as_json else ctx.say(f"deleted {args.id}")
    return DONE


def register(verbs: argparse._SubParsersAction) -> None:
    """`datasets create|list|show|explore|delete`."""
    group = verbs.add_parser("datasets", help="build, list, show, explore and delete datasets")
    sub = group.add_subparsers(dest="datasets_verb", required=True)
    flag = json_flag()
    make = sub.add_parser(
        "create",
        parents=[flag],
        help="build a dataset from a folder of class folders",
        description="SOURCE is a local folder of class folders or a zip/tar archive (uploaded "
        "with a progress bar), or an absolute folder on the server (as DIGITS took it; "
        "--server forces that reading). Then the build's progress until it ends.",
    )
    make.add_argument("source", help="local folder or archive, or an absolute server folder")
    make.add_argument("--name", required=True)
    make.add_argument("--server", action="store_true", help="SOURCE is a folder on the server")
    make.add_argument("--pct-val", type=int, default=25, help="%% held out for validation")
    make.add_argument("--pct-test", type=int, default=0, help="%% held out for testing")
    make.add_argument("--width", type=int, default=256)
    make.add_argument("--height", type=int, default=256)
    make.add_argument("--channels", type=int, choices=(1, 3), default=3)
    make.add_argument(
        "--resize-mode", choices=("squash", "crop", "fill", "half_crop"), default="squash"
    )
    make.add_argument("--encoding", choices=("png", "jpg", "none"), default="png")
    make.add_argument("--group", default="")
    make.add_argument("--no-wait", action="store_true", help="return once the build is queued")
    make.set_defaults(verb_fn=create)
    sub.add_parser("list", parents=[flag], help="every dataset").set_defaults(verb_fn=list_datasets)
    one = sub.add_parser("show", parents=[flag], help="one dataset's details")
    one.add_argument("id")
    one.set_defaults(verb_fn=show)
    look = sub.add_parser("explore", parents=[flag], help="a page of a built split")
    look.add_argument("id")
    look.add_argument("--db", choices=("train", "val", "test"), default="train")
    look.add_argument("--page", type=int, default=0)
    look.add_argument("--size", type=int, choices=(10, 25, 50, 100), default=25)
    look.add_argument("--label", type=int, help="only this class (its index)")
    look.add_argument("--save", metavar="DIR", help="save the page's images as DIR/<label>/")
    look.set_defaults(verb_fn=explore)
    gone = sub.add_parser("delete", parents=[flag], help="delete a dataset")
    gone.add_argument("id")
    gone.set_defaults(verb_fn=delete)
