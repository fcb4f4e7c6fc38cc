"""The shared page frame (title, user, assets around a template) and form re-rendering."""

from __future__ import annotations

from typing import Any

from litestar.response import Template

from digits_gateway.pages._assets import STATIC_URL, asset_version, import_map


def _page(
    template: str, title: str, user: str | None, status_code: int = 200, **context: Any
) -> Template:
    context.update(
        title=title,
        user=user,
        asset_v=asset_version(),
        importmap=import_map(),
        static=STATIC_URL,
    )
    return Template(template_name=template, context=context, status_code=status_code)


def _form(
    defaults: dict[str, str], values: dict[str, Any] | None, errors: dict[str, list[str]] | None
) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Values as strings over the defaults, and errors as lists of strings per field."""
    merged = dict(defaults)
    for key, value in (values or {}).items():
        merged[key] = "" if value is None else str(value)
    errs = {
        k: [str(m) for m in (v if isinstance(v, list) else [v])] for k, v in (errors or {}).items()
    }
    return merged, errs
