"""Result and error pages of the real gateway (issue 17): a browser's form post that fails gets
the HTML error page naming the field and leading back to the model, a missing job's URL the
HTML 404 page; JSON and text clients keep their bodies. Classify-many result pages carry signed
thumbnail links that serve only the images that run read, to the user it ran for."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from digits_gateway.settings import Settings
from digits_proto import codec, subjects
from digits_proto.base import BlobRef
from digits_proto.inference import ClassifiedMany, ClassifyMany, ImageResult, ManyResult
from digits_proto.runtime import serve_endpoints
from tests.gateway.accounts import sign_in
from tests.gateway.conftest import make_settings
from tests.gateway.test_models_routes import built_dataset, form, png

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
JSON = {"Accept": "application/json"}
LIST_MESSAGE = (
    "Choose an image list (a text file, one 'path [label]' a line) or an archive of images"
)
FILES_NOTE = 'id="error-files"'


@pytest.fixture
def settings(nats_url: str, tmp_path: Path) -> Settings:
    """Data roots the gateway may read thumbnails from (the inference service's, shared)."""
    (tmp_path / "roots").mkdir()
    return make_settings(nats_url, tmp_path, data_roots=[str(tmp_path / "roots")])


async def new_model(client: httpx.AsyncClient, backend) -> str:
    dataset_id = await built_dataset(client, backend)
    r = await client.post("/models/images/classification.json", data=form(dataset_id))
    return str(r.json()["id"])


MULTIPART = {"Content-Type": "multipart/form-data; boundary=b0undary"}


def empty_file_form(model_id: str) -> bytes:
    """A form with `job_id` and the two file inputs left empty (filename="", no bytes)."""
    parts = [f'name="job_id"\r\n\r\n{model_id}']
    for name in ("image_list", "image_archive"):
        parts.append(
            f'name="{name}"; filename=""\r\nContent-Type: application/octet-stream\r\n\r\n'
        )
    body = "".join(f"--b0undary\r\nContent-Disposition: form-data; {p}\r\n" for p in parts)
    return (body + "--b0undary--\r\n").encode()


def summary_fields(html: str) -> list[str]:
    return re.findall(r'<li data-field="([^"]+)"><strong>([^<]+)</strong>', html)  # type: ignore[return-value]


@pytest.mark.parametrize("route", ["top_n", "classify_many"])
async def test_a_browser_post_without_a_list_gets_the_error_page(client, backend, route) -> None:
    """400 HTML naming "Image list" in the form's own words (no raw field name) with a link
    back to the form on the model page; the same post from a script gets DIGITS's JSON body
    shape, fields unchanged."""
    model_id = await new_model(client, backend)
    url = f"/models/images/classification/{route}"
    page = await client.post(url, data={"job_id": model_id}, headers=BROWSER)
    assert page.status_code == 400 and page.headers["content-type"].startswith("text/html")
    assert summary_fields(page.text) == [("image_list", "Image list")]
    assert LIST_MESSAGE.replace("'", "&#39;") in page.text and "image_archive" not in page.text
    back = f'id="error-back" href="/models/{model_id}#test-many-heading">'
    assert back in page.text and "Back to the form" in page.text
    assert FILES_NOTE not in page.text  # no file was chosen: nothing to choose again
    # What Chromium sends for the model page's form with both file inputs left empty.
    page = await client.post(url, content=empty_file_form(model_id), headers=BROWSER | MULTIPART)
    assert page.status_code == 400 and "Choose an image list" in page.text
    assert FILES_NOTE not in page.text
    for headers, target in ((JSON, url), (BROWSER, f"{url}.json"), ({}, url)):
        r = await client.post(target, data={"job_id": model_id}, headers=headers)
        assert r.status_code == 400 and r.json() == {"errors": {"image_list": [LIST_MESSAGE]}}


async def test_a_refused_form_with_a_chosen_file_says_to_choose_it_again(client, backend) -> None:
    """An archive of the wrong type: the page names the archive field by its label, says the
    chosen file must be chosen again (no browser refills a file field) and links to the form."""
    model_id = await new_model(client, backend)
    url = "/models/images/classification/top_n"
    files = {"image_archive": ("pictures.rar", b"Rar!", "application/octet-stream")}
    page = await client.post(url, data={"job_id": model_id}, files=files, headers=BROWSER)
    assert page.status_code == 400, page.text
    assert summary_fields(page.text) == [("image_archive", "Archive of images")]
    assert FILES_NOTE in page.text and "choose them again" in page.text
    assert f'href="/models/{model_id}#test-many-heading"' in page.text
    r = await client.post(url, data={"job_id": model_id}, files=files, headers=JSON)
    assert r.status_code == 400 and list(r.json()["errors"]) == ["image_archive"]


async def test_a_browser_classify_one_with_a_non_image_gets_the_error_page(client, backend) -> None:
    """Inference refuses the file: 400 HTML naming "Image" (the form's label), back to the
    single-image form, saying the image must be chosen again; JSON kept."""
    model_id = await new_model(client, backend)
    url = "/models/images/classification/classify_one"
    files = {"image_file": ("notes.txt", b"not an image", "text/plain")}
    page = await client.post(url, data={"job_id": model_id}, files=files, headers=BROWSER)
    assert page.status_code == 400 and page.headers["content-type"].startswith("text/html")
    assert summary_fields(page.text) == [("image_file", "Image")]
    assert f'id="error-back" href="/models/{model_id}#test-heading"' in page.text
    assert FILES_NOTE in page.text  # the chosen image must be chosen again
    r = await client.post(url, data={"job_id": model_id}, files=files, headers=JSON)
    assert r.status_code == 400 and list(r.json()["errors"]) == ["image_file"]


@pytest.mark.parametrize("kind", ["models", "datasets", "pretrained_models"])
async def test_a_missing_job_in_a_browser_is_the_404_page(client, backend, kind) -> None:
    """The site frame, "No job has this id" (never there: not "deleted") and a way home; JSON
    and plain clients unchanged."""
    url = f"/{kind}/20200101-000000-dead"
    page = await client.get(url, headers=BROWSER)
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert '<h1 id="error-heading">No job has this id</h1>' in page.text
    assert "has the id 20200101-000000-dead" in page.text and "deleted" not in page.text
    assert 'id="error-back" href="/"' in page.text and 'class="site-header"' in page.text
    r = await client.get(url, headers=JSON)
    assert r.status_code == 404
    assert r.json() == {"error": {"message": "Job not found", "type": "NotFound"}}
    r = await client.get(url)
    assert r.status_code == 404 and r.text == "Job not found"


async def test_a_deleted_jobs_url_says_it_was_deleted(client, backend) -> None:
    """The read model keeps a deleted job's row: its page (and a job route under it) says the
    job was deleted, naming it, with a way home; JSON and plain bodies stay "Job not found"."""
    model_id = await new_model(client, backend)
    r = await client.get(f"/models/{model_id}.json")
    name = r.json()["name"]
    r = await client.delete(f"/api/v1/models/{model_id}")
    assert r.json() == {"id": model_id, "deleted": True}
    for url in (f"/models/{model_id}", f"/jobs/{model_id}", f"/models/{model_id}/download"):
        page = await client.get(url, headers=BROWSER)
        assert page.status_code == 404, (url, page.text)
        assert '<h1 id="error-heading">This job was deleted</h1>' in page.text, url
        assert f"The model “{name}” ({model_id}) was deleted" in page.text
        assert 'id="error-back" href="/"' in page.text
    url = f"/models/{model_id}"
    r = await client.get(url, headers=JSON)
    assert r.status_code == 404
    assert r.json() == {"error": {"message": "Job not found", "type": "NotFound"}}
    r = await client.get(url)
    assert r.status_code == 404 and r.text == "Job not found"


async def test_the_classify_one_page_names_its_snapshot_and_offers_another_image(
    client, backend
) -> None:
    """The epoch inference used is on the page and in the form that classifies another image."""
    model_id = await new_model(client, backend)
    page = await client.post(
        "/models/images/classification/classify_one",
        data={"job_id": model_id, "snapshot_epoch": "1"},
        files={"image_file": ("x.png", png(), "image/png")},
        headers=BROWSER,
    )
    assert page.status_code == 200, page.text
    assert '<span id="result-snapshot">snapshot epoch 1</span>' in page.text
    another = page.text.split('id="another-form"', 1)[1].split("</form>", 1)[0]
    assert f'name="job_id" value="{model_id}"' in another
    assert 'name="snapshot_epoch" value="1"' in another and 'name="image_file"' in another


@pytest.fixture
async def many_service(nc, settings: Settings):
    """A classify-many endpoint answering inline with the listed paths as results."""
    asked: list[ClassifyMany] = []

    async def classify_many(cmd: ClassifyMany) -> ClassifiedMany:
        asked.append(cmd)
        paths = [line.split()[0] for line in cmd.image_list_text.splitlines() if line.strip()]
        rows = [
            ImageResult(path=p, label=None, top1=0, predictions=[("cat", 90.0), ("dog", 10.0)])
            for p in paths
        ]
        result = ManyResult(
            job_id=cmd.job_id, snapshot_epoch=3.0, labels=["cat", "dog"], results=rows
        )
        return ClassifiedMany(
            job_id=cmd.job_id,
            snapshot_epoch=3.0,
            result=BlobRef(bucket="", name=""),
            count=len(rows),
            inline=result,
        )

    service = await serve_endpoints(
        nc,
        "test-many",
        codec.inference_commands,
        {subjects.CMD_INFERENCE_CLASSIFY_MANY: classify_many},
    )
    yield asked
    await service.stop()


async def test_classify_many_thumbnails_are_signed_links_to_the_images_it_read(
    client, backend, settings: Settings, many_service
) -> None:
    """Each absolute path of the result gets a lazy thumbnail; the link serves that image to
    this user only; a changed path, another user or a path outside the roots gets 404."""
    root = Path(settings.data_roots[0])
    (root / "a.png").write_bytes(png())
    (root / "b.png").write_bytes(png(4))
    model_id = await new_model(client, backend)
    listing = f"{root}/a.png\n{root}/b.png\nrelative/c.png\n"
    page = await client.post(
        "/models/images/classification/classify_many",
        data={"job_id": model_id, "snapshot_epoch": "3"},
        files={"image_list": ("list.txt", listing.encode(), "text/plain")},
        headers=BROWSER,
    )
    assert page.status_code == 200, page.text
    assert '<span id="result-snapshot">snapshot epoch 3</span>' in page.text
    assert "90.00 %</td>" in page.text
    links = [
        u.replace("&amp;", "&")
        for u in re.findall(
            r'<img src="(/models/images/classification/thumbnail\?[^"]+)"', page.text
        )
    ]
    assert len(links) == 2 and 'loading="lazy"' in page.text  # not the relative path
    image = await client.get(links[0])
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert image.content == (root / "a.png").read_bytes()
    forged = links[0].replace("a.png", "b.png", 1)
    assert (await client.get(forged)).status_code == 404
    assert (await client.get(links[0].replace("t=", "t=0", 1))).status_code == 404
    await sign_in(client, "bob")
    assert (await client.get(links[0])).status_code == 404
    json_body = await client.post(
        "/models/images/classification/classify_many.json",
        data={"job_id": model_id},
        files={"image_list": ("list.txt", listing.encode(), "text/plain")},
    )
    assert json_body.status_code == 200 and "thumbnails" not in json_body.json()


def test_a_signed_path_outside_the_roots_or_not_an_image_is_not_served(tmp_path: Path) -> None:
    """The signature says the run read the path; the roots and the file's type still decide."""
    from digits_gateway import many

    roots = [str(tmp_path / "roots")]
    (tmp_path / "roots").mkdir()
    (tmp_path / "secret.png").write_bytes(png())
    (tmp_path / "roots" / "link.png").symlink_to(tmp_path / "secret.png")
    (tmp_path / "roots" / "notes.png").write_bytes(b"plain text")
    paths = [
        str(tmp_path / "secret.png"),
        *(str(tmp_path / "roots" / n) for n in ("link.png", "notes.png")),
    ]
    links = many.thumbnails({"results": [{"path": p} for p in paths]}, "alice", roots)
    for path in paths:
        token = links[path].rsplit("t=", 1)[1]
        with pytest.raises(LookupError):
            many.thumbnail("alice", path, token, roots)
    assert many.thumbnails({"results": [{"path": paths[0]}]}, "alice", []) == {}
