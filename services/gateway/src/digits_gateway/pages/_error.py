"""The HTML error page: what a browser gets instead of a bare JSON or text error body."""

from __future__ import annotations

from typing import Any

from litestar.response import Template

from digits_gateway.pages._frame import _page

# The labels the model page's forms show for the fields an error may name (the rest: the
# name, humanised), so the summary names what the user sees.
FIELD_LABELS = {
    "job_id": "Model",
    "image_file": "Image",
    "image_path": "Image path",
    "image_list": "Image list",
    "image_archive": "Archive of images",
    "image_folder": "Image folder",
    "snapshot_epoch": "Snapshot",
    "num_test_images": "Number of images to test",
    "top_n": "Images per category",
    "body": "Request",
    "form": "Form",
}


def field_label(name: str) -> str:
    return FIELD_LABELS.get(name) or name.replace("_", " ").capitalize()


def error_page(
    status_code: int,
    title: str,
    message: str,
    errors: dict[str, list[str]] | None,
    back: tuple[str, str],
    user: str | None,
    files: bool = False,
) -> Template:
    """`title` as the heading, the message or the field errors (each naming its field), and one
    way on (`back`: href and text); `files`: the form carried chosen files, which a browser
    never puts back, so the page says to choose them again."""
    rows: list[dict[str, Any]] = [
        {"field": field_label(name), "name": name, "message": str(text)}
        for name, texts in (errors or {}).items()
        for text in texts
    ]
    return _page(
        "error.html",
        title,
        user,
        status_code=status_code,
        code=status_code,
        heading=title,
        message=message,
        rows=rows,
        back_href=back[0],
        back_text=back[1],
        files=files,
    )
