"""`digits classify MODEL IMAGE...|LIST|ARCHIVE` and `digits download MODEL`."""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path
from typing import Any

from rich.progress import Progress

from digits_cli.client import uploads
from digits_cli.client.api import DONE, JOB_FAILED, USAGE, CliError
from digits_cli.commands._common import Context, json_flag, table

MANY = "/models/images/classification/classify_many.json"
LISTS = (".txt", ".csv", ".lst")
POLL_EVERY = 1.0


def classify_image(ctx: Context, model: str, image: Path, epoch: str | None) -> dict[str, Any]:
    """Top-5 of one local image."""
    data = {"snapshot_epoch": epoch} if epoch else {}
    with image.open("rb") as file:
        body = ctx.api.json(
            "POST",
            f"/api/v1/models/{model}/classify",
            data=data,
            files={"image_file": (image.name, file, "application/octet-stream")},
        )
    return {"path": str(image), "predictions": body["predictions"]}


def _many(ctx: Context, args: argparse.Namespace, source: Path) -> dict[str, Any]:
    """An image list (server paths, DIGITS's format) or an archive of images, as one job."""
    fields = {"job_id": args.model}
    if args.epoch:
        fields["snapshot_epoch"] = args.epoch
    if args.image_folder:
        fields["image_folder"] = args.image_folder
    field = "image_list" if source.name.lower().endswith(LISTS) else "image_archive"
    with source.open("rb") as file:
        files = {field: (source.name, file, "application/octet-stream")}
        body = ctx.api.json("POST", MANY, data=fields, files=files, timeout=None)
    if "run_id" not in body:
        return body  # a short list is answered at once
    with Progress(console=ctx.err, disable=ctx.as_json) as bar:
        task = bar.add_task("classify", total=body.get("total") or None)
        while True:
            state = ctx.api.json("GET", body["status_url"])
            bar.update(task, completed=state.get("done", 0), total=state.get("total") or None)
            if state["status"] == "Done":
                return state["result"]
            if state["status"] in ("Error", "Aborted"):
                raise CliError(f"classification {state['status']}: {state.get('error')}", 1)
            time.sleep(POLL_EVERY)


def classify(ctx: Context, args: argparse.Namespace) -> int:
    """Classify images with a model; a table of top predictions, or `--json`."""
    sources = [Path(p) for p in args.inputs]
    for source in sources:
        if not source.is_file():
            raise CliError(f"no such file: {source}", USAGE)
    whole = len(sources) == 1 and (
        uploads.is_archive(sources[0]) or sources[0].name.lower().endswith(LISTS)
    )
    if whole:
        body = _many(ctx, args, sources[0])
        results = body.get("results", [])
    else:
        results = [classify_image(ctx, args.model, s, args.epoch) for s in sources]
        body = {"job_id": args.model, "results": results}
    if ctx.as_json:
        ctx.print_json(body)
    else:
        rows = [
            {
                "image": r["path"],
                **{
                    f"#{i + 1}": f"{label} {pct:.1f}%"
                    for i, (label, pct) in enumerate(r["predictions"][:3])
                },
            }
            for r in results
        ]
        table(rows, ["image", "#1", "#2", "#3"])
        if body.get("top1_accuracy") is not None:
            ctx.say(f"top-1 accuracy {body['top1_accuracy']:.1f} %")
    for error in body.get("errors") or []:  # lines or members the server could not read
        where = error.get("path", error) if isinstance(error, dict) else error
        why = error.get("error", "") if isinstance(error, dict) else ""
        ctx.err.print(f"skipped {where}: {why}", markup=False, highlight=False, soft_wrap=True)
    return DONE if results else JOB_FAILED


def _filename(disposition: str, fallback: str) -> str:
    match = re.search(r'filename="?([^";]+)"?', disposition or "")
    return Path(match.group(1)).name if match else fallback


def download(ctx: Context, args: argparse.Namespace) -> int:
    """A snapshot's deployment archive (weights, network, labels, mean; `--onnx` adds ONNX)."""
    route = f"/models/{args.model}/download" + (
        "" if args.format == "tar.gz" else f".{args.format}"
    )
    params = {k: v for k, v in (("epoch", args.epoch), ("onnx", "1" if args.onnx else None)) if v}
    with ctx.api.stream("GET", route, params=params, timeout=None) as response:
        name = _filename(
            response.headers.get("content-disposition", ""), f"{args.model}.{args.format}"
        )
        target = Path(args.output) if args.output else Path(name)
        if target.is_dir():
            target = target / name
        total = int(response.headers.get("content-length", 0)) or None
        with uploads.byte_bar(ctx.err, ctx.as_json) as bar, target.open("wb") as out:
            task = bar.add_task(f"download {target.name}", total=total)
            for chunk in response.iter_bytes():
                out.write(chunk)
                bar.advance(task, len(chunk))
    size = target.stat().st_size
    if ctx.as_json:
        ctx.print_json({"model": args.model, "path": str(target), "bytes": size})
    else:
        ctx.say(f"{target} ({size} bytes)")
    return DONE


def register(verbs: argparse._SubParsersAction) -> None:
    """`classify` and `download`."""
    parser = verbs.add_parser(
        "classify",
        parents=[json_flag()],
        help="classify local images, an image list or an archive with a model",
        description="IMAGE...: local image files, each sent to the model. LIST (.txt): "
        "DIGITS's image list of server paths ('path [label]' a line). ARCHIVE (zip/tar): "
        "images classified as one job on the server, with a progress bar.",
    )
    parser.add_argument("model", help="the model's id")
    parser.add_argument("inputs", nargs="+", metavar="IMAGE|LIST|ARCHIVE")
    parser.add_argument("--epoch", help="the snapshot to use (default: the last)")
    parser.add_argument("--image-folder", help="LIST paths are relative to this server folder")
    parser.set_defaults(verb_fn=classify)
    parser = verbs.add_parser(
        "download",
        parents=[json_flag()],
        help="download a model snapshot (weights, network, labels, mean)",
    )
    parser.add_argument("model", help="the model's id")
    parser.add_argument("--epoch", help="the snapshot's epoch (default: the last)")
    parser.add_argument("--onnx", action="store_true", help="add model.onnx to the archive")
    parser.add_argument(
        "--format", choices=("tar.gz", "tgz", "tar", "tar.bz2", "zip"), default="tar.gz"
    )
    parser.add_argument("--output", "-o", help="file or folder (default: the server's name)")
    parser.set_defaults(verb_fn=download)
