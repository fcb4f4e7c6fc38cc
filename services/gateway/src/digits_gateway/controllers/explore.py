"""DIGITS's explore (`/datasets/images/classification/explore`): a built split as a gallery.

The datasets service reads the packed RecordIO; this route renders one page of record
indices, and each `<img>` loads from `/datasets/<id>/records/<db>/<index>` (one record per
request, so a page of 100 large images never has to fit in one NATS message).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import msgspec
from litestar import MediaType, Request, Response, get

from digits_gateway import commands, ui
from digits_gateway.controllers._common import require_user, text
from digits_gateway.deps import Gateway
from digits_gateway.errors import JobNotFound
from digits_gateway.forms import Fields
from digits_gateway.params import read_params, wants_json
from digits_proto import codec, subjects
from digits_proto.base import is_job_id
from digits_proto.datasets import ExploreDataset, ExploredPage, GetDatasetRecord

PAGE_SIZES = ("10", "25", "50", "100")
WINDOW = 5  # pager: pages either side of the current one, as DIGITS


def explore_query(values: dict[str, Any]) -> ExploreDataset:
    """DIGITS's query parameters: job_id, db, page, size, label (all checked, 400 naming one)."""
    f = Fields(values)
    job_id = f.text("job_id", required=True)
    db = f.choice("db", ("train", "val", "test"), "train")
    page = f.integer("page", 0, 0)
    size = int(f.choice("size", PAGE_SIZES, "25"))
    label = f.integer("label", None, 0)
    f.check()
    return ExploreDataset(dataset_id=job_id, db=db, page=page or 0, size=size, label=label)


def pager(query: ExploreDataset, total: int) -> list[dict[str, Any]]:
    """Links of the pages around the current one."""
    last = max(0, (total - 1) // query.size)
    first, end = max(0, query.page - WINDOW), min(last, query.page + WINDOW)
    return [
        {"number": n, "url": page_url(query, page=n), "current": n == query.page}
        for n in range(first, end + 1)
    ]


def page_url(query: ExploreDataset, **changes: Any) -> str:
    """This page's URL with some parameters changed."""
    params = {
        "job_id": query.dataset_id,
        "db": query.db,
        "page": query.page,
        "size": query.size,
        "label": query.label,
    }
    params.update(changes)
    clean = {k: v for k, v in params.items() if v is not None}
    return f"/datasets/images/classification/explore?{urlencode(clean)}"


@get("/datasets/images/classification/explore", status_code=200, media_type=MediaType.HTML)
async def explore(request: Request[Any, Any, Any], gw: Gateway) -> Any:
    """The gallery page (HTML), or the page as JSON (`Accept: application/json`)."""
    params = await read_params(request)
    query = msgspec.structs.replace(explore_query(params.values), principal=require_user(request))
    job = commands.find_job(gw, query.dataset_id, "dataset")
    reply: ExploredPage = await gw.bus.ask(
        subjects.CMD_DATASETS_EXPLORE, query, codec.explore_reply
    )
    items = [
        {
            "index": i,
            "label": reply.labels[lab],
            "label_index": lab,
            "src": f"/datasets/{query.dataset_id}/records/{query.db}/{i}",
        }
        for i, lab in zip(reply.indices, reply.record_labels, strict=True)
    ]
    if wants_json(request):
        return Response(
            {
                "total": reply.total,
                "page": reply.page,
                "size": reply.size,
                "labels": reply.labels,
                "items": items,
            },
            media_type=MediaType.JSON,
        )
    return ui.pages()._page(  # type: ignore[no-any-return]  # the shared page frame
        "datasets/explore.html",
        f"Explore {job.name} · {query.db}",
        ui.pages().current_user(request),
        job={"id": job.id, "name": job.name},
        query=query,
        items=items,
        total=reply.total,
        labels=reply.labels,
        pages=pager(query, reply.total),
        sizes=[(int(s), page_url(query, size=int(s), page=0)) for s in PAGE_SIZES],
        label_links=[(None, "All classes", page_url(query, label=None, page=0))]
        + [(i, name, page_url(query, label=i, page=0)) for i, name in enumerate(reply.labels)],
    )


@get("/datasets/{job_id:str}/records/{db:str}/{index:int}", status_code=200)
async def record_image(
    request: Request[Any, Any, Any], job_id: str, db: str, index: int, gw: Gateway
) -> Response[Any]:
    """One record's image (raw records come back as PNG)."""
    principal = require_user(request)
    if not is_job_id(job_id):  # it becomes a subject token: never a wildcard or a '.'
        raise JobNotFound()
    if db not in ("train", "val", "test"):
        return text(f"Unknown db {db!r}", 404)
    reply = await gw.bus.ask(
        subjects.CMD_DATASETS_RECORD,
        GetDatasetRecord(dataset_id=job_id, db=db, index=index, principal=principal),
        codec.record_reply,
    )
    return Response(
        reply.image,
        media_type=reply.media_type,
        headers={"Cache-Control": "private, max-age=86400"},  # a built record never changes
    )
