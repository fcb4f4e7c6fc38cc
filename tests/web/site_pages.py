"""Every page the fake site serves, in one place, for the site-wide browser checks (layout at
390 px, contrast in both themes, screenshots). A new page is one more row here.

Each row: a short name (screenshot file names), the path, and who is signed in ("" = nobody).
Pages that need a session are opened signed in; the rest as a visitor, as users first see them."""

from __future__ import annotations

from typing import NamedTuple

from playwright.sync_api import Browser, BrowserContext, Page

from tests.web.fake_admin import MANY_URL, PRETRAINED
from tests.web.fake_compare import GROUP, RUN_A, RUN_B, RUN_C
from tests.web.fake_modelpage import MANY
from tests.web.fake_site import DS_BUILDING, DS_DONE, DS_RUNNING, MODEL, sign_in


class SitePage(NamedTuple):
    name: str
    path: str
    user: str = "alice"


SITE_PAGES: list[SitePage] = [
    SitePage("home", "/"),
    SitePage("home-visitor", "/", ""),
    SitePage("home-groups-tags", "/test/home"),  # groups, owners, tags, metrics
    SitePage("login", "/login", ""),
    SitePage("login-error", "/test/login-error", ""),
    SitePage("dataset-new", "/datasets/images/classification/new"),
    SitePage("dataset-new-errors", "/test/dataset-errors"),
    SitePage("dataset-done", f"/datasets/{DS_DONE}"),
    SitePage("dataset-running", f"/datasets/{DS_RUNNING}"),
    SitePage("dataset-building", f"/datasets/{DS_BUILDING}"),
    SitePage("explore", f"/datasets/images/classification/explore?job_id={DS_DONE}&db=train"),
    SitePage(
        "explore-class",
        f"/datasets/images/classification/explore?job_id={DS_DONE}&db=val&label=3&size=100",
    ),
    SitePage("model-new", "/models/images/classification/new"),
    SitePage("model-new-errors", "/test/model-errors"),
    SitePage("model", f"/models/{MODEL}"),
    SitePage("model-59-snapshots", f"/models/{MANY}"),
    SitePage("compare", f"/models/compare?ids={MODEL}"),
    SitePage("compare-3-runs", f"/models/compare?ids={RUN_A},{RUN_B},{RUN_C}"),
    SitePage("compare-group", f"/models/compare?group={GROUP}"),
    SitePage("classify-one", "/test/classify"),
    SitePage("classify-one-epoch-1", "/test/classify-one"),
    SitePage("classify-many", "/test/classify-many"),
    SitePage("top-n", "/test/top-n"),
    SitePage("classify-many-running", MANY_URL),
    SitePage("form-error", f"/test/form-error?job_id={MODEL}"),
    SitePage("missing-job", "/test/missing-job"),
    SitePage("pretrained-new", "/pretrained_models/new"),
    SitePage("pretrained", f"/pretrained_models/{PRETRAINED}"),
    SitePage("cluster", "/cluster"),
    SitePage("admin-home", "/", "admin"),
    SitePage("account", "/test/account"),
    SitePage("account-new-token", "/test/account-new-token"),
    SitePage("admin-users", "/test/admin-users", "admin"),
    SitePage("admin-audit", "/admin/audit", "admin"),
    SitePage("event-catalogue", "/events/catalogue", ""),
]


WIDTHS = {"phone": (390, 844), "desktop": (1280, 800)}


class Contexts:
    """Browser contexts per (user, colour scheme, viewport), each signed in once and reused."""

    def __init__(self, browser: Browser, site: str):
        self.browser, self.site = browser, site
        self.made: dict[tuple[str, str, str], BrowserContext] = {}

    def page(self, spec: SitePage, scheme: str = "light", size: str = "phone") -> Page:
        """A new tab on `spec`, loaded (fonts included), as its user, in that scheme and size."""
        key = (spec.user, scheme, size)
        if key not in self.made:
            width, height = WIDTHS[size]
            ctx = self.browser.new_context(
                viewport={"width": width, "height": height}, color_scheme=scheme
            )
            if spec.user:
                login = ctx.new_page()
                sign_in(login, self.site, spec.user)
                login.close()
            self.made[key] = ctx
        page = self.made[key].new_page()
        self.errors: list[str] = []  # uncaught exceptions of the page just opened
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        page.goto(self.site + spec.path, wait_until="load")
        page.evaluate("document.fonts.ready.then(() => true)")
        return page

    def close(self) -> None:
        for ctx in self.made.values():
            ctx.close()


def page_id(spec: SitePage) -> str:
    return spec.name
