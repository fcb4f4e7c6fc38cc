"""Server-side tests of the pages module: view models, render functions and page routes."""

from __future__ import annotations

import re

import pytest
from litestar.testing import TestClient

from digits_gateway.pages import STATIC_DIR, TEMPLATES_DIR, safe_next
from digits_gateway.pages._assets import import_map
from digits_gateway.pages._view import (
    dataset_view,
    fmt_duration,
    fmt_time,
    history_view,
    model_view,
    predictions_view,
    progress_pct,
)
from tests.gateway.accounts import PASSWORDS
from tests.web.fake_site import DS_DONE, MODEL, build_app


@pytest.fixture
def client():
    with TestClient(build_app()) as client:
        yield client


def test_fmt_time_accepts_epoch_seconds_millis_and_iso() -> None:
    """Timestamps in seconds, milliseconds or ISO text all render as UTC."""
    assert fmt_time(0)["text"] == "1970-01-01 00:00:00 UTC"
    assert fmt_time(1_000_000_000_000)["iso"] == "2001-09-09T01:46:40+00:00"
    assert fmt_time("2026-11-27T10:30:00Z")["text"] == "2026-11-27 10:30:00 UTC"
    assert fmt_time("Tue Nov 27") == {"iso": "", "text": "Tue Nov 27"}
    assert fmt_time(None) is None
    assert fmt_time(1e300) == {"iso": "", "text": "1e+300"}


def test_fmt_duration_and_progress_handle_odd_values() -> None:
    """Durations and progress are short text, and junk gives an empty value, not an error."""
    assert fmt_duration(3725) == "1 h 02 min"
    assert fmt_duration(80) == "1 min 20 s"
    assert fmt_duration(float("nan")) == ""
    assert fmt_duration(-1) == ""
    assert progress_pct(0.426) == 43
    assert progress_pct(55) == 55
    assert progress_pct(None) is None
    assert progress_pct(True) is None


def test_history_view_reads_pairs_and_dicts() -> None:
    """status_history may be [status, ts] pairs or {status, timestamp} dicts."""
    rows = history_view([["Running", 0], {"status": "Done", "time": "2026-01-01T00:00:00Z"}, 5])
    assert [r["status"]["text"] for r in rows] == ["Running", "Done"]
    assert rows[1]["time"]["iso"].startswith("2026-01-01")


def test_views_survive_missing_and_malformed_keys() -> None:
    """A job dict with nothing useful still gives a complete view model."""
    bad = {
        "ParseFolderTasks": "x",
        "CreateDbTasks": [None],
        "labels": 3,
        "snapshots": ["a", [2]],
        "image dimensions": [28, "x"],
        "errors": [None, "boom", {"reason": "r"}],
    }
    view = dataset_view(bad)
    assert view["name"] == "Unnamed job"
    assert view["status"]["text"] == "Unknown"
    assert view["labels"] == [] and view["splits"] == []
    assert view["errors"] == ["boom", "r"]
    model = model_view(bad)
    assert model["snapshots"] == ["2"]
    assert model["dims"] == ""


def test_predictions_view_clamps_and_skips_junk() -> None:
    """Predictions keep at most 5 rows, clamp percentages to 0..100 and drop bad rows."""
    rows = predictions_view(
        [["a", 120], ["b", "x"], ["c"], ["d", 1.234], ["e", -3], ["f", 1], ["g", 1], ["h", 1]]
    )
    assert [(r["label"], r["pct"]) for r in rows] == [("a", 100.0), ("d", 1.234), ("e", 0.0)]
    assert rows[1]["text"] == "1.23%"  # DIGITS's format: its scripts split items on whitespace


def test_safe_next_only_allows_local_paths() -> None:
    """The login form never sends a user to another site."""
    assert safe_next("/models/1") == "/models/1"
    assert safe_next("//evil.example/") == "/"
    assert safe_next("https://evil.example/") == "/"
    assert safe_next("/\\evil") == "/"
    assert safe_next("") == "/"


def test_import_map_maps_uplot_and_own_modules_to_versioned_urls() -> None:
    """The import map resolves `uplot` and each own module to a cache-busted URL that exists."""
    imports = import_map()["imports"]
    assert re.fullmatch(r"/static/vendor/uPlot\.esm\.js\?v=\w+", imports["uplot"])
    assert imports["/static/js/live.js"].startswith("/static/js/live.js?v=")
    assert (STATIC_DIR / "vendor" / "uPlot.esm.js").is_file()
    assert "uplot 1.6.32" in (STATIC_DIR / "vendor" / "VERSIONS.txt").read_text()
    assert (TEMPLATES_DIR / "base.html").is_file()


def test_new_pages_redirect_to_login_without_a_user(client: TestClient) -> None:
    """The new-dataset and new-model forms need a login first, as in DIGITS."""
    for path in ("/datasets/images/classification/new", "/models/images/classification/new"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 302
        assert response.headers["location"] == f"/login?next={path}"


def test_a_username_cookie_signs_nobody_in(client: TestClient) -> None:
    """DIGITS's `username` cookie is no sign-in any more: the forms still ask for a login."""
    client.cookies.set("username", "alice")
    response = client.get("/datasets/images/classification/new", follow_redirects=False)
    assert response.status_code == 302


def test_login_page_keeps_a_safe_next(client: TestClient) -> None:
    """GET /login puts a local `next` in the form and drops a foreign one."""
    page = client.get("/login", params={"next": "/models/abc"}).text
    assert 'name="next" value="/models/abc"' in page
    page = client.get("/login", params={"next": "//evil.example"}).text
    assert 'name="next" value="/"' in page


def test_forms_render_defaults_for_a_logged_in_user(client: TestClient) -> None:
    """The new forms carry DIGITS's defaults and show the user in the header."""
    r = client.post("/login", data={"username": "alice", "password": PASSWORDS["alice"]})
    assert r.status_code == 200  # followed the redirect home
    page = client.get("/datasets/images/classification/new").text
    assert 'id="folder_pct_val" name="folder_pct_val" type="number" value="25"' in page
    assert 'name="resize_channels" value="3" checked' in page
    assert "<strong>alice</strong>" in page
    page = client.get("/models/images/classification/new").text
    assert 'id="train_epochs" name="train_epochs" type="number" value="30"' in page
    assert 'value="lenet" checked' in page
    assert '<option value="SGD" selected>' in page


def test_refused_form_is_a_400_with_errors_linked_to_fields(client: TestClient) -> None:
    """A re-rendered form answers 400 and links each error to its field."""
    response = client.get("/test/dataset-errors")
    assert response.status_code == 400
    assert '<a href="#folder_train">Training images: Folder is outside the data roots</a>' in (
        response.text
    )
    assert 'aria-describedby="folder_train-help folder_train-error" aria-invalid="true"' in (
        response.text
    )


def test_job_names_are_escaped(client: TestClient) -> None:
    """A job name with markup is shown as text."""
    page = client.get("/datasets/20261127-103000-c3d4").text
    assert "cifar-small &lt;b&gt;bold?&lt;/b&gt;" in page
    assert "<b>bold?</b>" not in page


def test_unknown_jobs_render_without_errors(client: TestClient) -> None:
    """Job pages built from a dict with only an id still render."""
    assert client.get("/datasets/nothing-here").status_code == 200
    assert client.get("/models/nothing-here").status_code == 200


def test_pages_show_job_facts(client: TestClient) -> None:
    """Dataset and model pages print the facts from the DIGITS JSON."""
    page = client.get(f"/datasets/{DS_DONE}").text
    assert "28×28" in page and "Grayscale" in page and "3750" in page
    page = client.get(f"/models/{MODEL}").text
    assert "28×28, 1 channel" in page
    assert '<option value="2">Epoch #2</option>' in page
    assert 'action="/models/images/classification/classify_one"' in page


def test_classify_page_only_shows_image_data_urls(client: TestClient) -> None:
    """The result page shows a data:image URL and nothing else as the image source."""
    from digits_gateway.pages import classify_one_page

    template = classify_one_page({"id": "m"}, [["cat", 90]], "javascript:alert(1)", None)
    assert template.context["image"] == ""
    page = client.get("/test/classify").text
    assert 'src="data:image/png;base64,' in page
    assert "97.12%" in page
