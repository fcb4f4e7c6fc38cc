"""Inference result pages of a model: Classify One, Classify Many (and its progress), Top N."""

from __future__ import annotations

from typing import Any

from litestar.response import Template

from digits_gateway.pages._frame import _page
from digits_gateway.pages._view import model_view, predictions_view


def classify_one_page(
    job: dict[str, Any],
    predictions: list[list[Any]],
    image_data_url: str,
    user: str | None,
    visualizations: dict[str, Any] | None = None,
    snapshot_epoch: float | None = None,
) -> Template:
    """Classify One result: the input image, the top-5 predictions and, when asked, the layers;
    it names the snapshot used and holds a form to classify another image with it."""
    view = model_view(job or {})
    image = image_data_url if (image_data_url or "").startswith("data:image/") else ""
    return _page(
        "models/classify_one.html",
        f"Classify One · {view['name']}",
        user,
        job=view,
        predictions=predictions_view(predictions),
        image=image,
        visuals=visualizations,
        snapshot_epoch=snapshot_epoch,
        show_visualizations=visualizations is not None,
    )


def classify_many_page(job: dict[str, Any], result: dict[str, Any], user: str | None) -> Template:
    """Classify Many result: accuracy, confusion heat map, per-class accuracy, results table."""
    view = model_view(job or {})
    return _page(
        "models/classify_many.html",
        f"Classify Many · {view['name']}",
        user,
        job=view,
        result=result,
    )


def classify_many_progress_page(
    job: dict[str, Any], status: dict[str, Any], user: str | None
) -> Template:
    """A classify-many job still running: its progress, refreshed by the page's script."""
    view = model_view(job or {})
    return _page(
        "models/classify_many_progress.html",
        f"Classify Many · {view['name']}",
        user,
        job=view,
        status=status,
    )


def top_n_page(job: dict[str, Any], result: dict[str, Any], user: str | None) -> Template:
    """Top-N per category: for each class a mosaic of its best-scoring images."""
    view = model_view(job or {})
    return _page("models/top_n.html", f"Top N · {view['name']}", user, job=view, result=result)
