"""The page routes the gateway owns outright: home, login form, the empty new-job forms."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from litestar import Request, get
from litestar.response import Redirect, Template

from digits_gateway.identity import TokenNotFound, start_session
from digits_gateway.pages._account import account_routes
from digits_gateway.pages._datasets import dataset_new_page
from digits_gateway.pages._frame import _page
from digits_gateway.pages._login import current_user, login_page, safe_next
from digits_gateway.pages._models import model_new_page
from digits_gateway.pages._pretrained import pretrained_new_page


def _login_redirect(request: Request) -> Redirect:
    return Redirect(path=f"/login?next={quote(request.url.path, safe='/')}")


@get("/", include_in_schema=False, sync_to_thread=False)
def home(request: Request) -> Template:
    """Home: datasets and models tables, filled and kept live by home.js."""
    return _page("home.html", "Home", current_user(request))


@get("/login", include_in_schema=False)
async def login_form(
    request: Request, next: str = "/", token: str | None = None
) -> Template | Redirect:
    """GET /login: the form (POST /login belongs to the gateway). `?token=` is the first
    admin's one-time sign-in link: it signs in once, then never again."""
    if not token:
        return login_page(next, None)
    gw = request.app.state.gateway
    try:
        account = await gw.accounts.use_signin_token(token)
    except TokenNotFound as e:
        return login_page(next, e.message, status_code=404)
    start_session(request, account)
    return Redirect(path=safe_next(next))


@get("/datasets/images/classification/new", include_in_schema=False, sync_to_thread=False)
def new_dataset(request: Request) -> Template | Redirect:
    """Empty new-dataset form; DIGITS requires a login first."""
    user = current_user(request)
    return dataset_new_page({}, {}, user) if user else _login_redirect(request)


@get("/models/images/classification/new", include_in_schema=False, sync_to_thread=False)
def new_model(request: Request) -> Template | Redirect:
    """Empty new-model form; the dataset list is fetched client-side from /index.json."""
    user = current_user(request)
    if not user:
        return _login_redirect(request)
    # "Use for a new model" on a pretrained model's page opens its tab with it chosen.
    query = request.query_params
    start = {"method": "pretrained", "pretrained_networks": query.get("pretrained_networks", "")}
    return model_new_page(start if query.get("method") == "pretrained" else {}, {}, [], user)


@get("/pretrained_models/new", include_in_schema=False, sync_to_thread=False)
def new_pretrained(request: Request) -> Template | Redirect:
    """The upload form (DIGITS had it in a dialog on the home page's third tab)."""
    user = current_user(request)
    return pretrained_new_page({}, {}, user) if user else _login_redirect(request)


page_routes: list[Any] = [
    home,
    login_form,
    new_dataset,
    new_model,
    new_pretrained,
    *account_routes,
]
