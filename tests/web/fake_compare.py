"""Fake routes of the stand-in gateway for the compare pages (see fake_site.build_app)."""

from __future__ import annotations

from typing import Any

ROUTES: list[Any] = []
