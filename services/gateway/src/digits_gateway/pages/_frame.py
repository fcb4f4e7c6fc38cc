"""The shared page frame (title, user, assets around a template) and form pages re-filled."""

from __future__ import annotations

import uuid
from typing import Any

from litestar.response import Template

from digits_gateway.pages._assets import STATIC_URL, asset_version, import_map


def new_idempotency_key() -> str:
    """A fresh key for one rendered form (its hidden `idempotency_key` field): submitting the
    same form twice, a double click or a resend, makes one job."""
    return uuid.uuid4().hex


def _page(
    template: str, title: str, user: str | None, status_code: int = 200, **context: Any
) -> Template:
    context.update(
        title=title,
        user=user,
        asset_v=asset_version(),
        importmap=import_map(),
        static=STATIC_URL,
        new_idempotency_key=new_idempotency_key,
    )
    return Template(template_name=template, context=context, status_code=status_code)


def _form_page(
    template: str,
    title: str,
    user: str | None,
    defaults: dict[str, str],
    values: dict[str, Any] | None,
    errors: dict[str, list[str]] | None,
    **context: Any,
) -> Template:
    """A form page re-filled with the submitted values (as strings, over the defaults) and its
    errors (lists of strings per field); 400 when there are errors."""
    merged = dict(defaults)
    for key, value in (values or {}).items():
        merged[key] = "" if value is None else str(value)
    errs = {
        k: [str(m) for m in (v if isinstance(v, list) else [v])] for k, v in (errors or {}).items()
    }
    return _page(
        template,
        title,
        user,
        status_code=400 if errs else 200,
        values=merged,
        errors=errs,
        **context,
    )
