"""Fake data and routes of the stand-in gateway for the dataset pages (see fake_site.build_app):
the built dataset's Create DB tasks in the real gateway's shape (digits_gateway.views._db_task:
split, shards, bytes, per-class counts of the training AND validation splits), and its explore
gallery rendered as controllers/explore.py does, with the real query/pager helpers."""

from __future__ import annotations

import io
from typing import Any

from litestar import Request, get
from litestar.response import Template
from PIL import Image, ImageDraw

from digits_gateway.controllers.explore import PAGE_SIZES, explore_query, page_url, pager
from digits_gateway.pages import current_user
from digits_gateway.pages._frame import _page
from tests.web.fake_site import DATASETS, DS_DONE

ROUTES: list[Any] = []

TRAIN_COUNTS = [380, 420, 375, 371, 360, 340, 377, 390, 366, 371]
VAL_COUNTS = [127, 140, 125, 124, 120, 113, 126, 130, 122, 123]


def _real_shape(task: dict[str, Any], split: str, counts: list[int], size: int) -> None:
    task.update(
        name=f"Create DB ({split})",
        split=split,
        entries=sum(counts),
        shard_count=3 if split == "train" else 1,
        rec_bytes=size,
        error_count=1 if split == "train" else 0,
        class_counts=counts,
        class_error_counts=[0, 0, 0, 1, 0, 0, 0, 0, 0, 0] if split == "train" else [0] * 10,
    )


train_task, val_task = DATASETS[DS_DONE]["CreateDbTasks"]
_real_shape(train_task, "train", TRAIN_COUNTS, 1_512_000_000)
_real_shape(val_task, "val", VAL_COUNTS, 12_400_000)


# --- the explore gallery (the real route asks the datasets service for a page of records) ---


def _explore_context(request: Request, job_id: str) -> dict[str, Any]:
    """What controllers/explore.py puts in the template, from the fake dataset's counts."""
    query = explore_query(dict(request.query_params))
    labels = DATASETS[job_id]["labels"]
    counts = TRAIN_COUNTS if query.db == "train" else VAL_COUNTS
    records = [(n, n % len(labels)) for n in range(sum(counts))]
    if query.label is not None:
        records = [r for r in records if r[1] == query.label]
    shown = records[query.page * query.size : (query.page + 1) * query.size]
    return {
        "job": {"id": job_id, "name": DATASETS[job_id]["name"]},
        "query": query,
        "items": [
            {
                "index": i,
                "label": labels[lab],
                "label_index": lab,
                "src": f"/datasets/{job_id}/records/{query.db}/{i}",
            }
            for i, lab in shown
        ],
        "total": len(records),
        "labels": labels,
        "pages": pager(query, len(records)),
        "sizes": [(int(s), page_url(query, size=int(s), page=0)) for s in PAGE_SIZES],
        "label_links": [(None, "All classes", page_url(query, label=None, page=0))]
        + [(i, name, page_url(query, label=i, page=0)) for i, name in enumerate(labels)],
    }


@get("/datasets/images/classification/explore", sync_to_thread=False)
def explore(request: Request) -> Template:
    job_id = str(request.query_params.get("job_id", DS_DONE))
    context = _explore_context(request, job_id)
    title = f"Explore {context['job']['name']} · {context['query'].db}"
    return _page("datasets/explore.html", title, current_user(request), **context)


@get(
    "/datasets/{job_id:str}/records/{db:str}/{index:int}",
    sync_to_thread=False,
    media_type="image/png",
)
def record_image(job_id: str, db: str, index: int) -> bytes:
    """A 28x28 digit-ish blob per record."""
    img = Image.new("L", (28, 28), 0)
    ImageDraw.Draw(img).text((9, 7), str(index % 10), fill=255)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


ROUTES.extend([explore, record_image])
