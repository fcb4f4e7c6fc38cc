"""Pretrained-model pages: one model's page and the upload form."""

from __future__ import annotations

from typing import Any

from litestar.response import Template

from digits_gateway.pages._frame import _form_page, _page
from digits_gateway.pages._view import model_view

PRETRAINED_DEFAULTS = {
    "job_name": "",
    "image_type": "3",
    "resize_mode": "squash",
    "width": "224",
    "height": "224",
}


def pretrained_page(job: dict[str, Any], user: str | None) -> Template:
    """A pretrained model: how it preprocesses, its labels, classify/download/fine-tune."""
    view = model_view(job or {})
    view.update(
        labels=[str(label) for label in job.get("labels") or []],
        source=str(job.get("source") or ""),
        source_model_id=str(job.get("source_model_id") or ""),
        fine_tunable=bool(job.get("fine_tunable")),
    )
    return _page("pretrained/show.html", f"{view['name']} · Pretrained model", user, job=view)


def pretrained_new_page(
    values: dict[str, Any], errors: dict[str, list[str]], user: str | None
) -> Template:
    """Upload a pretrained model: an archive, or weights + network (+ labels)."""
    return _form_page(
        "pretrained/new.html",
        "Upload a pretrained model",
        user,
        PRETRAINED_DEFAULTS,
        values,
        errors,
    )
