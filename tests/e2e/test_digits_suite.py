"""DIGITS's own view test-suite (digits/**/test_views.py), driven against the running system.

Same imageset (three 10×10 colour-gradient classes, an optional half-size fourth), same form fields,
same expectations on statuses and JSON keys. Where the issues chose better than DIGITS the test says
so: a custom network is Gluon source, refused with a 400 before training when it is broken, and the
JSON reports the `recordio` backend that an `lmdb` request is mapped to.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.e2e.conftest import System, signed_in, wait_until

pytestmark = pytest.mark.e2e

IMAGE_COUNT = 10  # per class, as DIGITS's tests
# DIGITS's "hidden InnerProduct" test network, in Gluon: scaled pixels into one dense layer.
NETWORK = """\
from mxnet.gluon import nn


def build_network(classes, input_shape):
    net = nn.HybridSequential()
    net.add(nn.HybridLambda(lambda F, x: x * 0.0125), nn.Dense(classes))
    return net
"""
BOGUS_NETWORK = """\
def build_network(classes, input_shape):
    return BogusCode(0)
"""


def _gradient_image(size: int, color_to: list[float], rotation: int) -> Image.Image:
    """DIGITS's test image: a black-to-colour gradient, rotated per class."""
    rgb = [np.linspace(0, color_to[c], size).astype("uint8") for c in range(3)]
    picture = np.repeat(np.concatenate(rgb), size)
    picture.shape = (3, size, size)
    return Image.fromarray(picture.T).rotate(rotation)


def create_imageset(folder: Path, unbalanced: bool = False) -> dict[str, list[str]]:
    """digits/dataset/images/classification/test_imageset_creator.py, 10×10 images."""
    config = [
        ("red-to-right", 0, 0, IMAGE_COUNT),
        ("green-to-top", 1, 90, IMAGE_COUNT),
        ("blue-to-left", 2, 180, IMAGE_COUNT),
    ]
    if unbalanced:
        config.append(("blue-to-bottom", 2, 270, IMAGE_COUNT // 2))
    paths: dict[str, list[str]] = {}
    for name, index, rotation, count in config:
        (folder / name).mkdir(parents=True)
        for i, color in enumerate(np.linspace(200, 255, count)):
            pixel = [0.0, 0.0, 0.0]
            pixel[index] = color
            relative = f"{name}/{i}.png"
            _gradient_image(10, pixel, rotation).save(folder / relative)
            paths.setdefault(name, []).append(relative)
    return paths


class Digits:
    """The helpers of digits/test_views.py over HTTP."""

    def __init__(self, client: httpx.Client, folder: Path, paths: dict[str, list[str]]):
        self.app, self.folder, self.paths = client, folder, paths

    def exists(self, kind: str, job_id: str) -> bool:
        rv = self.app.get(f"/{kind}/{job_id}", follow_redirects=True)
        assert rv.status_code in (200, 404), rv.status_code
        return rv.status_code == 200

    def status(self, kind: str, job_id: str) -> str:
        rv = self.app.get(f"/{kind}/{job_id}/status")
        assert rv.status_code == 200
        return rv.json()["status"]

    def info(self, kind: str, job_id: str) -> dict:
        rv = self.app.get(f"/{kind}/{job_id}.json")
        assert rv.status_code == 200, rv.text
        return rv.json()

    def wait(self, kind: str, job_id: str, timeout: float = 180) -> str:
        return wait_until(
            lambda: (s := self.status(kind, job_id)) in ("Done", "Abort", "Aborted", "Error") and s,
            timeout=timeout,
            every=0.3,
            what=f"{kind} {job_id}",
        )

    def abort(self, kind: str, job_id: str) -> int:
        return self.app.post(f"/{kind}/{job_id}/abort").status_code

    def delete(self, kind: str, job_id: str) -> int:
        return self.app.delete(f"/{kind}/{job_id}").status_code

    def edit(self, job_id: str, **fields: str) -> int:
        return self.app.put(f"/jobs/{job_id}", data=fields).status_code

    def create_dataset(self, folder: Path | None = None, json_reply: bool = False, **kw) -> str:
        data = {
            "dataset_name": "test_dataset",
            "group_name": "test_group",
            "method": "folder",
            "folder_train": str(folder or self.folder),
            "resize_channels": "3",
            "resize_width": "10",
            "resize_height": "10",
            "backend": "lmdb",
            "encoding": "png",
            "compression": "none",
        }
        data.update({k: str(v) for k, v in kw.items() if v is not None})
        return self._create("/datasets/images/classification", data, {}, json_reply, "datasets")

    def create_model(self, dataset_id: str, json_reply: bool = False, **kw) -> str | list[str]:
        data = {
            "model_name": "test_model",
            "group_name": "test_group",
            "dataset": dataset_id,
            "method": "custom",
            "custom_network": NETWORK,
            "batch_size": "10",
            "train_epochs": "1",
            "random_seed": str(0xCAFEBABE),
            "shuffle": "false",
        }
        data.update({k: str(v) for k, v in kw.items()})
        return self._create("/models/images/classification", data, {}, json_reply, "models")

    def _create(self, url, data, files, json_reply, kind):
        if json_reply:
            rv = self.app.post(url + ".json", data=data, files=files or None)
            if rv.status_code != 200:
                raise RuntimeError(f"creation failed with {rv.status_code}: {rv.text}")
            body = rv.json()
            return [j["id"] for j in body["jobs"]] if "jobs" in body else body["id"]
        rv = self.app.post(url, data=data, files=files or None)
        if not 300 <= rv.status_code <= 310:
            raise RuntimeError(f"creation failed with {rv.status_code}")
        job_id = rv.headers["location"].rstrip("/").split("/")[-1]
        assert self.exists(kind, job_id), "job not found after successful creation"
        return job_id

    def image_upload(self, category: str, index: int = 0) -> dict:
        data = (self.folder / self.paths[category][index]).read_bytes()
        return {"image_file": ("image.png", io.BytesIO(data), "image/png")}

    def image_list(self, absolute: bool = True, label_of=lambda i: str(i)) -> dict:
        lines = []
        for label_id, images in enumerate(self.paths.values()):
            for image in images:
                path = str(self.folder / image) if absolute else image
                lines.append(f"{path} {label_of(label_id)}")
        text = "\n".join(lines) + "\n"
        return {"image_list": ("images.txt", io.BytesIO(text.encode()), "text/plain")}


@pytest.fixture(scope="module")
def digits(digits_system: System) -> Iterator[Digits]:
    folder = digits_system.root / "digits-suite" / "imageset"
    paths = create_imageset(folder)
    # DIGITS's suite logged in with a name; here the account has a password too.
    with signed_in(digits_system, "digits-testsuite") as client:
        yield Digits(client, folder, paths)
        assert client.post("/logout").status_code == 302


@pytest.fixture(scope="module")
def unbalanced(digits_system: System) -> Path:
    folder = digits_system.root / "digits-suite" / "unbalanced"
    create_imageset(folder, unbalanced=True)
    return folder


@pytest.fixture(scope="module")
def dataset_id(digits: Digits) -> str:
    job_id = digits.create_dataset(json_reply=True)
    assert digits.wait("datasets", job_id) == "Done"
    return job_id


@pytest.fixture(scope="module")
def model_id(digits: Digits, dataset_id: str) -> str:
    job_id = digits.create_model(dataset_id, json_reply=True, train_epochs=5)
    assert digits.wait("models", job_id) == "Done", digits.info("models", job_id)
    return job_id


# --- digits/test_views.py -------------------------------------------------------------------


def test_homepage_invalid_page_models_page_and_autocomplete(digits: Digits) -> None:
    """Home names its sections, unknown pages are 404, /models lands on a page, paths complete."""
    home = digits.app.get("/")
    assert home.status_code == 200
    assert all(text in home.text for text in ("Home", "Datasets", "Models"))
    assert digits.app.get("/foo").status_code == 404
    models = digits.app.get("/models", follow_redirects=True)
    assert models.status_code == 200 and "Models" in models.text
    for query in ("/", "./"):
        rv = digits.app.get("/autocomplete/path", params={"query": query})
        assert rv.status_code == 200 and "suggestions" in rv.json()


# --- digits/dataset/images/classification/test_views.py ------------------------------------------


def test_dataset_new_page_and_nonexistent_dataset(digits: Digits) -> None:
    """The form page has DIGITS's title; an unknown dataset does not exist."""
    rv = digits.app.get("/datasets/images/classification/new")
    assert rv.status_code == 200 and "New Image Classification Dataset" in rv.text
    assert not digits.exists("datasets", "foo")


def test_dataset_nonexistent_folder_is_refused(digits: Digits) -> None:
    """A train folder that does not exist is not accepted."""
    with pytest.raises(RuntimeError):
        digits.create_dataset(folder=Path("/not-a-directory"))


def test_dataset_create_json_abort_and_delete_cycles(digits: Digits) -> None:
    """create+abort, create+delete, create+abort+delete, create+wait+delete as DIGITS."""
    job_id = digits.create_dataset(json_reply=True)
    digits.abort("datasets", job_id)

    job_id = digits.create_dataset()
    assert digits.delete("datasets", job_id) == 200
    assert not digits.exists("datasets", job_id)

    job_id = digits.create_dataset()
    assert digits.abort("datasets", job_id) in (200, 403)  # 403 only if it already finished
    assert digits.delete("datasets", job_id) == 200
    assert not digits.exists("datasets", job_id)

    job_id = digits.create_dataset()
    assert digits.wait("datasets", job_id) == "Done"
    assert digits.delete("datasets", job_id) == 200
    assert not digits.exists("datasets", job_id)


@pytest.mark.parametrize("absolute", [True, False])
@pytest.mark.parametrize("local", [True, False])
def test_dataset_from_textfiles(digits: Digits, absolute: bool, local: bool) -> None:
    """Server-local or uploaded lists, absolute paths or relative to a folder, build Done."""
    train = ""
    for label_id, images in enumerate(digits.paths.values()):
        for image in images:
            path = str(digits.folder / image) if absolute else image
            train += f"{path} {label_id}\n"
    labels = "".join(f"{label}\n" for label in digits.paths)
    data: dict[str, str] = {"method": "textfile", "textfile_use_val": "y"}
    files = {}
    if local:
        tag = f"{int(absolute)}{int(local)}"
        train_file = digits.folder / f"local_train_{tag}.txt"
        labels_file = digits.folder / f"local_labels_{tag}.txt"
        train_file.write_text(train)
        labels_file.write_text(labels)
        data.update(
            textfile_use_local_files="True",
            textfile_local_train_images=str(train_file),
            textfile_local_val_images=str(train_file),
            textfile_local_labels_file=str(labels_file),
        )
    else:
        files = {
            "textfile_train_images": ("train.txt", io.BytesIO(train.encode()), "text/plain"),
            "textfile_val_images": ("val.txt", io.BytesIO(train.encode()), "text/plain"),
            "textfile_labels_file": ("labels.txt", io.BytesIO(labels.encode()), "text/plain"),
        }
    if not absolute:
        data["textfile_train_folder"] = str(digits.folder)
        data["textfile_val_folder"] = str(digits.folder)
    form = {
        "dataset_name": "test_dataset",
        "resize_channels": "3",
        "resize_width": "10",
        "resize_height": "10",
        **data,
    }
    rv = digits.app.post("/datasets/images/classification", data=form, files=files or None)
    assert 300 <= rv.status_code <= 310, rv.text
    job_id = rv.headers["location"].rstrip("/").split("/")[-1]
    assert digits.wait("datasets", job_id) == "Done", digits.info("datasets", job_id)


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_dataset_image_count(digits: Digits, split: str) -> None:
    """20 % val and 10 % test exactly; a separate val/test folder is a second ParseFolderTasks."""
    extra = {}
    if split != "train":
        extra = {f"has_{split}_folder": "True", f"folder_{split}": str(digits.folder)}
    job_id = digits.create_dataset(folder_pct_val=20, folder_pct_test=10, **extra)
    assert digits.wait("datasets", job_id) == "Done"
    info = digits.info("datasets", job_id)
    if split == "train":
        assert len(info["ParseFolderTasks"]) == 1
        parse = info["ParseFolderTasks"][0]
        count = parse["train_count"] + parse["val_count"] + parse["test_count"]
        assert parse["val_count"] == 0.2 * count
        assert parse["test_count"] == 0.1 * count
    else:
        assert len(info["ParseFolderTasks"]) == 2
        parse = info["ParseFolderTasks"][1]
        other = {"val": "test", "test": "val"}[split]
        assert parse["train_count"] == 0 and parse[f"{other}_count"] == 0
        count = parse[f"{split}_count"]
    assert parse["label_count"] == len(digits.paths)
    assert count == IMAGE_COUNT * parse["label_count"]
    assert digits.delete("datasets", job_id) == 200
    assert not digits.exists("datasets", job_id)


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_dataset_max_per_class(digits: Digits, split: str) -> None:
    """At most IMAGE_COUNT/2 images per class in the limited split."""
    cap = IMAGE_COUNT // 2
    data: dict[str, object] = {"folder_pct_val": 0}
    if split == "train":
        data["folder_train_max_per_class"] = cap
    else:
        data.update(
            {
                f"has_{split}_folder": "True",
                f"folder_{split}": str(digits.folder),
                f"folder_{split}_max_per_class": cap,
            }
        )
    job_id = digits.create_dataset(**data)
    assert digits.wait("datasets", job_id) == "Done"
    tasks = digits.info("datasets", job_id)["ParseFolderTasks"]
    assert len(tasks) == (1 if split == "train" else 2)
    parse = tasks[-1]
    count = parse["train_count"] + parse["val_count"] + parse["test_count"]
    assert count == cap * parse["label_count"]
    assert digits.delete("datasets", job_id) == 200


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_dataset_min_per_class_drops_the_small_class(
    digits: Digits, unbalanced: Path, split: str
) -> None:
    """A class with fewer images than the minimum is dropped from the limited split."""
    floor = IMAGE_COUNT // 2 + 1
    data: dict[str, object] = {"folder_pct_val": 0}
    if split == "train":
        data["folder_train_min_per_class"] = floor
    else:
        data.update(
            {
                f"has_{split}_folder": "True",
                f"folder_{split}": str(unbalanced),
                f"folder_{split}_min_per_class": floor,
            }
        )
    job_id = digits.create_dataset(folder=unbalanced, **data)
    assert digits.wait("datasets", job_id) == "Done", digits.info("datasets", job_id)
    tasks = digits.info("datasets", job_id)["ParseFolderTasks"]
    assert len(tasks) == (1 if split == "train" else 2)
    assert tasks[-1]["label_count"] + 1 == 4
    assert digits.delete("datasets", job_id) == 200


def test_created_dataset_json_index_mean_backend_and_explore(
    digits: Digits, dataset_id: str
) -> None:
    """index.json lists it; its JSON, mean.jpg (W×H), backend and both explore pages answer."""
    assert any(d["id"] == dataset_id for d in digits.app.get("/index.json").json()["datasets"])
    assert digits.info("datasets", dataset_id)["id"] == dataset_id
    mean = digits.app.get(f"/files/{dataset_id}/mean.jpg")
    assert mean.status_code == 200
    assert Image.open(io.BytesIO(mean.content)).size == (10, 10)
    for task in digits.info("datasets", dataset_id)["CreateDbTasks"]:
        assert task["backend"] == "recordio"  # lmdb was asked for: mapped, and said so
    for db in ("train", "val"):
        rv = digits.app.get(
            "/datasets/images/classification/explore", params={"job_id": dataset_id, "db": db}
        )
        assert rv.status_code == 200 and "Items per page" in rv.text


def test_created_dataset_edit_name_and_notes(digits: Digits, dataset_id: str) -> None:
    """PUT /jobs/<id> renames (the summary shows the new name) and saves notes."""
    assert digits.edit(dataset_id, job_name="new name") == 200
    summary = digits.app.get("/datasets/summary", params={"job_id": dataset_id})
    assert summary.status_code == 200 and "new name" in summary.text
    assert digits.edit(dataset_id, job_notes="new notes") == 200


def test_aborted_dataset_cannot_be_explored(digits: Digits) -> None:
    """Exploring an aborted dataset says why (DIGITS answered 500 'status should be')."""
    job_id = digits.create_dataset()
    digits.abort("datasets", job_id)
    if digits.wait("datasets", job_id) == "Done":
        pytest.skip("the build finished before the abort arrived")
    rv = digits.app.get(
        "/datasets/images/classification/explore", params={"job_id": job_id, "db": "val"}
    )
    assert rv.status_code in (400, 409) and "status" in rv.text.lower()


def test_dataset_clone_reproduces_the_job(digits: Digits) -> None:
    """`clone=<id>` replays the form: the JSON is equal but for id and directory."""
    options = {
        "encoding": "png",
        "folder_pct_test": 0,
        "folder_pct_val": 25,
        "folder_test": "",
        "folder_test_min_per_class": 2,
        "folder_train_max_per_class": 3,
        "folder_train_min_per_class": 1,
        "folder_val_min_per_class": 2,
        "resize_mode": "half_crop",
    }
    job1 = digits.create_dataset(**options)
    assert digits.wait("datasets", job1) == "Done"
    job2 = digits.create_dataset(clone=job1)
    assert digits.wait("datasets", job2) == "Done"
    content1, content2 = (
        _info_without_id(digits, "datasets", job1),
        _info_without_id(digits, "datasets", job2),
    )
    for content in (content1, content2):
        for key in ("id", "directory"):
            content.pop(key, None)
    assert not _differences(_stable(content1), _stable(content2))


# --- digits/model/images/classification/test_views.py --------------------------------------------


def test_model_pages_visualize_and_customize(digits: Digits) -> None:
    """New-model page, unknown model, network graph and 'Customize' answer as in DIGITS."""
    rv = digits.app.get("/models/images/classification/new")
    assert rv.status_code == 200 and "New Image Classification Model" in rv.text
    assert not digits.exists("models", "foo")
    graph = digits.app.post("/models/visualize-network", data={"custom_network": NETWORK})
    assert graph.status_code == 200, graph.text
    assert digits.app.post("/models/customize", params={"network": "lenet"}).status_code == 200


def test_model_create_abort_and_delete_cycles(digits: Digits, dataset_id: str) -> None:
    """create.json+abort, create+delete, create+abort+delete, create+wait+delete."""
    job_id = digits.create_model(dataset_id, json_reply=True, train_epochs=50)
    assert digits.abort("models", job_id) == 200

    job_id = digits.create_model(dataset_id)
    assert digits.delete("models", job_id) == 200
    assert not digits.exists("models", job_id)

    job_id = digits.create_model(dataset_id, train_epochs=50)
    assert digits.abort("models", job_id) == 200
    assert digits.delete("models", job_id) == 200
    assert not digits.exists("models", job_id)

    job_id = digits.create_model(dataset_id)
    assert digits.wait("models", job_id) == "Done"
    assert digits.delete("models", job_id) == 200
    assert not digits.exists("models", job_id)


def test_model_snapshot_intervals(digits: Digits, dataset_id: str) -> None:
    """snapshot_interval 0.5 over 1 epoch gives >1 snapshot; 2 over 4 epochs gives exactly 2."""
    half = digits.create_model(dataset_id, snapshot_interval=0.5)
    two = digits.create_model(dataset_id, train_epochs=4, snapshot_interval=2)
    assert digits.wait("models", half) == "Done"
    assert len(digits.info("models", half)["snapshots"]) > 1
    assert digits.wait("models", two) == "Done"
    assert len(digits.info("models", two)["snapshots"]) == 2


def _classify_html(digits: Digits, model: str, category: str, **extra: str) -> list[list[str]]:
    rv = digits.app.post(
        "/models/images/classification/classify_one",
        params={"job_id": model},
        data=extra,
        files=digits.image_upload(category),
    )
    assert rv.status_code == 200, rv.text
    from html.parser import HTMLParser

    class Items(HTMLParser):
        """Collect the text of `ul.list-group li`, DIGITS's test parses exactly that."""

        def __init__(self) -> None:
            super().__init__()
            self.depth, self.items, self.in_item = 0, [], False

        def handle_starttag(self, tag, attrs):
            classes = dict(attrs).get("class") or ""
            if tag == "ul" and "list-group" in classes.split():
                self.depth += 1
            elif tag == "li" and self.depth:
                self.in_item = True
                self.items.append("")

        def handle_endtag(self, tag):
            if tag == "li":
                self.in_item = False
            elif tag == "ul" and self.depth:
                self.depth -= 1

        def handle_data(self, data):
            if self.in_item:
                self.items[-1] += data

    parser = Items()
    parser.feed(rv.text)
    return [item.split() for item in parser.items]


@pytest.mark.parametrize("use_mean", ["image", "pixel", "none"])
def test_classify_one_per_mean_mode(digits: Digits, dataset_id: str, use_mean: str) -> None:
    """A model trained with each mean mode classifies one image per class from the HTML page."""
    job_id = digits.create_model(dataset_id, use_mean=use_mean, train_epochs=5)
    assert digits.wait("models", job_id) == "Done", digits.info("models", job_id)
    for category in digits.paths:
        predictions = _classify_html(digits, job_id, category)
        if use_mean != "none":
            assert predictions[0][1] == category, predictions


def test_model_retrain_and_retrain_twice(digits: Digits, dataset_id: str, model_id: str) -> None:
    """Fine-tune from a snapshot, then from that job's own pretrained model (snapshot -1)."""
    snapshots = digits.info("models", model_id)["snapshots"]
    assert snapshots
    job2 = digits.create_model(
        dataset_id,
        method="previous",
        previous_networks=model_id,
        **{f"{model_id}-snapshot": snapshots[-1]},
    )
    assert digits.wait("models", job2) == "Done", digits.info("models", job2)
    job3 = digits.create_model(
        dataset_id, method="previous", previous_networks=job2, **{f"{job2}-snapshot": -1}
    )
    assert digits.wait("models", job3) == "Done", digits.info("models", job3)


def test_bad_network_definition_is_refused_naming_the_code(digits: Digits, dataset_id: str) -> None:
    """A broken network is a 400 before training whose message shows the failing code."""
    rv = digits.app.post(
        "/models/images/classification.json",
        data={
            "model_name": "bogus",
            "dataset": dataset_id,
            "method": "custom",
            "custom_network": BOGUS_NETWORK,
        },
    )
    assert rv.status_code == 400 and "BogusCode" in rv.text


def test_model_clone_reproduces_the_job(digits: Digits, dataset_id: str) -> None:
    """`clone=<id>`: the model JSON is equal but for id, directory, creation time and job id."""
    options = {
        "shuffle": True,
        "snapshot_interval": 2.0,
        "lr_step_size": 33.0,
        "lr_inv_power": 0.5,
        "lr_inv_gamma": 0.1,
        "lr_poly_power": 3.0,
        "lr_exp_gamma": 0.9,
        "use_mean": "image",
        "lr_multistep_gamma": 0.5,
        "lr_policy": "exp",
        "val_interval": 3.0,
        "random_seed": 123,
        "learning_rate": 0.0125,
        "lr_step_gamma": 0.1,
        "lr_sigmoid_step": 50.0,
        "lr_sigmoid_gamma": 0.1,
        "lr_multistep_values": "50,85",
    }
    job1 = digits.create_model(dataset_id, **options)
    assert digits.wait("models", job1) == "Done"
    job2 = digits.create_model(dataset_id, clone=job1)
    assert digits.wait("models", job2) == "Done"
    content1, content2 = (
        _info_without_id(digits, "models", job1),
        _info_without_id(digits, "models", job2),
    )
    for content in (content1, content2):
        for key in ("id", "directory", "creation time", "job id"):
            content.pop(key, None)
    assert not _differences(_stable(content1), _stable(content2))


def test_created_model_download_index_and_json(digits: Digits, dataset_id: str, model_id: str):
    """Every archive format downloads; index.json lists the model; its JSON names the dataset."""
    for extension in ("tar", "zip", "tar.gz", "tar.bz2"):
        rv = digits.app.get(f"/models/{model_id}/download.{extension}")
        assert rv.status_code == 200, (extension, rv.status_code)
    assert any(m["id"] == model_id for m in digits.app.get("/index.json").json()["models"])
    content = digits.info("models", model_id)
    assert content["id"] == model_id and content["dataset_id"] == dataset_id
    assert len(content["snapshots"]) > 0


def test_created_model_edit_name_and_notes(digits: Digits, model_id: str) -> None:
    """PUT /jobs/<id> with job_name / job_notes answers 200 for a model too."""
    assert digits.edit(model_id, job_name="new name") == 200
    assert digits.edit(model_id, job_notes="new notes") == 200


def test_created_model_classify_one_html_and_json(digits: Digits, model_id: str) -> None:
    """First image of the first class (HTML, with visualizations), last of the last (JSON)."""
    first = next(iter(digits.paths))
    predictions = _classify_html(digits, model_id, first, show_visualizations="y")
    assert predictions[0][1] == first, predictions
    last = list(digits.paths)[-1]
    rv = digits.app.post(
        "/models/images/classification/classify_one.json",
        params={"job_id": model_id},
        data={"show_visualizations": "y"},
        files=digits.image_upload(last, -1),
    )
    assert rv.status_code == 200, rv.text
    assert rv.json()["predictions"][0][0] == last


def test_created_model_classify_many_variants(digits: Digits, model_id: str) -> None:
    """A list of absolute paths, relative paths + folder, invalid ground truth: all 200."""
    url = "/models/images/classification/classify_many"
    params = {"job_id": model_id}
    rv = digits.app.post(url, params=params, files=digits.image_list(), follow_redirects=True)
    assert rv.status_code == 200, rv.text
    rv = digits.app.post(
        url,
        params=params,
        data={"image_folder": str(digits.folder)},
        files=digits.image_list(absolute=False),
        follow_redirects=True,
    )
    assert rv.status_code == 200, rv.text
    invalid = digits.image_list(label_of=lambda i: str(3 * i - 1))  # -1 and > len(labels)
    rv = digits.app.post(url, params=params, files=invalid, follow_redirects=True)
    assert rv.status_code == 200, rv.text


def test_created_model_classify_many_json(digits: Digits, model_id: str) -> None:
    """`classifications` maps each path to its predictions; the first of each class is right."""
    rv = digits.app.post(
        "/models/images/classification/classify_many.json",
        params={"job_id": model_id},
        files=digits.image_list(),
    )
    assert rv.status_code == 200, rv.text
    data = rv.json()
    assert "classifications" in data
    for category, images in digits.paths.items():
        assert data["classifications"][str(digits.folder / images[0])][0][0] == category


def test_created_model_top_n(digits: Digits, model_id: str) -> None:
    """Top-N from a list (absolute, or relative with a folder) names every class."""
    for absolute in (True, False):
        data = {} if absolute else {"image_folder": str(digits.folder)}
        rv = digits.app.post(
            "/models/images/classification/top_n",
            params={"job_id": model_id},
            data=data,
            files=digits.image_list(absolute=absolute),
            follow_redirects=True,
        )
        assert rv.status_code == 200, rv.text
        assert all(category in rv.text for category in digits.paths)


def test_inference_while_training(digits: Digits, dataset_id: str, model_id: str) -> None:
    """classify_one.json answers while a long training job holds a device; then delete it."""
    job_id = digits.create_model(dataset_id, select_gpu_count=1, batch_size=10, train_epochs=1000)
    try:
        deadline = time.monotonic() + 120
        while (status := digits.status("models", job_id)) in ("Initialized", "Waiting"):
            assert time.monotonic() < deadline, "the training job never started"
            time.sleep(0.05)
        assert status == "Running", status
        last = list(digits.paths)[-1]
        rv = digits.app.post(
            "/models/images/classification/classify_one.json",
            params={"job_id": model_id},
            files=digits.image_upload(last, -1),
        )
        json.loads(rv.text)
        assert rv.status_code == 200
    finally:
        assert digits.delete("models", job_id) == 200


def test_model_on_deleted_dataset_fails(digits: Digits) -> None:
    """A model cannot be created on a dataset that was deleted."""
    dataset = digits.create_dataset()
    assert digits.delete("datasets", dataset) == 200
    assert not digits.exists("datasets", dataset)
    with pytest.raises(RuntimeError):
        digits.create_model(dataset)


def test_model_waits_for_a_running_dataset(digits: Digits) -> None:
    """A model on a dataset still building is Waiting, then runs once the dataset is Done."""
    dataset = digits.create_dataset()
    model = digits.create_model(dataset, train_epochs=20)
    while digits.status("datasets", dataset) != "Done":
        status = digits.status("models", model)
        if status == "Waiting":
            break
        if status != "Initialized":
            # It started: the dataset is Done, though the read model may show that a moment
            # after the model's start (the two streams are projected independently).
            assert digits.wait("datasets", dataset, timeout=10) == "Done", status
            break
        time.sleep(0.2)
    assert digits.wait("datasets", dataset) == "Done"
    time.sleep(1)
    assert digits.status("models", model) in ("Running", "Done")
    # Whatever the polling saw, the model never ran before its dataset was Done.
    done_at = dict(digits.info("datasets", dataset)["status_history"])["Done"]
    running_at = dict(digits.info("models", model)["status_history"])["Running"]
    assert running_at >= done_at
    digits.abort("models", model)


def test_dataset_with_dependent_model_cannot_be_deleted(digits: Digits) -> None:
    """403 for a dataset (done or still running) that a model depends on."""
    dataset = digits.create_dataset()
    model = digits.create_model(dataset)
    assert digits.delete("datasets", dataset) == 403
    assert digits.wait("datasets", dataset) == "Done"
    assert digits.delete("datasets", dataset) == 403
    digits.abort("models", model)


def test_sweep_creates_one_job_per_combination(digits: Digits, dataset_id: str) -> None:
    """learning_rate '[0.01, 0.02]' × batch_size '[8, 10]' → 4 jobs, all Done, all deletable."""
    job_ids = digits.create_model(
        dataset_id, json_reply=True, learning_rate="[0.01, 0.02]", batch_size="[8, 10]"
    )
    assert isinstance(job_ids, list) and len(job_ids) == 4
    for job_id in job_ids:
        assert digits.wait("models", job_id) == "Done"
        assert digits.delete("models", job_id) == 200
        assert not digits.exists("models", job_id)


def _stable(content: dict) -> dict:
    """Drop what differs between two runs of the same job by nature (names, times, durations)."""
    volatile = ("name", "creation time", "elapsed", "submitted", "started", "finished", "status")
    return {k: v for k, v in content.items() if not any(word in k.lower() for word in volatile)}


def _differences(a: object, b: object, path: str = "") -> list[str]:
    """Where two JSON values differ, as `/key/key: a != b` lines (readable in a failure)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [
            d
            for k in sorted(set(a) | set(b))
            for d in _differences(a.get(k), b.get(k), f"{path}/{k}")
        ]
    return [] if a == b else [f"{path}: {a!r:.80} != {b!r:.80}"]


def _info_without_id(digits: Digits, kind: str, job_id: str) -> dict:
    """The job's JSON with its own id (inside URLs and paths too) replaced by a placeholder."""
    return json.loads(json.dumps(digits.info(kind, job_id)).replace(job_id, "<id>"))
