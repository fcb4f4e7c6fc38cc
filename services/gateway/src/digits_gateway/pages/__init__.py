"""HTML pages of the gateway: the page routes it owns outright and the render functions
its JSON routes call for their HTML variants. Templates live in `web/templates`."""

from __future__ import annotations

from digits_gateway.pages._assets import STATIC_DIR, STATIC_URL, TEMPLATES_DIR, WEB_DIR
from digits_gateway.pages._datasets import dataset_new_page, dataset_page
from digits_gateway.pages._error import error_page
from digits_gateway.pages._frame import _page as _page  # the cluster page's frame too
from digits_gateway.pages._inference import (
    classify_many_page,
    classify_many_progress_page,
    classify_one_page,
    top_n_page,
)
from digits_gateway.pages._login import current_user, login_page, safe_next
from digits_gateway.pages._models import model_new_page, model_page
from digits_gateway.pages._pretrained import pretrained_new_page, pretrained_page
from digits_gateway.pages._routes import page_routes

__all__ = [
    "STATIC_DIR",
    "STATIC_URL",
    "TEMPLATES_DIR",
    "WEB_DIR",
    "classify_many_page",
    "classify_many_progress_page",
    "classify_one_page",
    "current_user",
    "dataset_new_page",
    "dataset_page",
    "error_page",
    "login_page",
    "model_new_page",
    "model_page",
    "page_routes",
    "pretrained_new_page",
    "pretrained_page",
    "safe_next",
    "top_n_page",
]
