"""DIGITS's small navigation routes: `/datasets`, `/models`, `/autocomplete/path`, `/files/...`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from litestar import get
from litestar.params import Parameter
from litestar.response import File, Redirect

from digits_gateway import commands
from digits_gateway.controllers.datasets import mean_jpg
from digits_gateway.deps import Gateway
from digits_gateway.errors import JobNotFound

MAX_SUGGESTIONS = 50


@get(["/datasets", "/models"], status_code=302, include_in_schema=False)
async def job_lists() -> Redirect:
    """DIGITS's blueprint roots: the lists live on the home page."""
    return Redirect(path="/")


@get("/autocomplete/path")
async def autocomplete_path(
    gw: Gateway, text: Annotated[str, Parameter(query="query")] = ""
) -> dict[str, list[str]]:
    """`{"suggestions": [...]}`: paths starting with `query`, only inside the data roots.

    DIGITS globbed the whole server disk; here a query outside the roots only suggests the roots
    it is a prefix of, so the form can still lead a user to them.
    """
    roots = [Path(r).resolve() for r in gw.settings.data_roots]
    query = text if text.startswith(os.sep) else os.sep + text  # DIGITS: only absolute paths
    suggestions = {str(r) for r in roots if str(r).startswith(query) and str(r) != query}
    parent, _, prefix = query.rpartition(os.sep)
    folder = Path(parent or os.sep)
    if _inside(folder, roots):
        suggestions.update(_entries(folder, prefix))
    return {"suggestions": sorted(suggestions)[:MAX_SUGGESTIONS]}


@get("/files/{job_id:str}/{name:str}", include_in_schema=False)
async def job_file(gw: Gateway, job_id: str, name: str) -> File:
    """DIGITS served job folders at /files/<id>/...; of those files, mean.jpg exists here."""
    job = commands.find_job(gw, job_id)
    if job.type != "dataset" or name != "mean.jpg":
        raise JobNotFound(f"No file {name!r} in job {job_id}")
    return await mean_jpg(gw, job.id)


def _inside(folder: Path, roots: list[Path]) -> bool:
    try:
        resolved = folder.resolve()
    except OSError:
        return False
    return any(resolved == r or resolved.is_relative_to(r) for r in roots)


def _entries(folder: Path, prefix: str) -> list[str]:
    """Visible entries of `folder` whose name starts with `prefix`."""
    try:
        with os.scandir(folder) as entries:
            names = [e.name for e in entries if e.name.startswith(prefix) and e.name[0] != "."]
    except OSError:
        return []
    return [str(folder / name) for name in sorted(names)[:MAX_SUGGESTIONS]]
