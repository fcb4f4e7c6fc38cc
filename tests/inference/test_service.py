"""The inference service in-process against a real nats-server: classify one, and its refusals."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from PIL import Image

from digits_inference.settings import Settings
from digits_proto import codec, subjects
from digits_proto.base import BlobRef
from digits_proto.datasets import DatasetBuilt, DatasetCreated, DatasetSpec
from digits_proto.inference import Classified, ClassifyOne
from digits_proto.models import ModelCreated, ModelDeleted, SnapshotSaved, TrainSpec
from digits_proto.replies import Rejected
from digits_proto.runtime import EventStore, ServiceHost, put_bytes, put_file, request
from tests.fakes.principals import ALICE
from tests.inference.inprocess import running_inference
from tests.inference.nets import export_net

LABELS = ["dark", "mid", "bright"]
SHAPE = (3, 12, 12)  # the dataset is 16×16 RGB; the model takes a 12×12 center crop
NORMAL = [0.0, 0.5, 1.0]  # epoch 2: logits peak at the label matching the mean intensity
REVERSED = [1.0, 0.5, 0.0]  # epoch 1: the opposite, so the two snapshots are told apart


def png(level: int, size: tuple[int, int] = (40, 30)) -> bytes:
    """A solid grey PNG of the given level."""
    out = io.BytesIO()
    Image.new("RGB", size, (level, level, level)).save(out, format="PNG")
    return out.getvalue()


def ref(name: str) -> BlobRef:
    """A blob reference nothing reads (dataset blobs inference does not need)."""
    return BlobRef(bucket=subjects.BUCKET_DATASETS, name=name)


async def add_dataset(js, dataset_id: str) -> None:
    """Append a built 16×16 RGB squash dataset with labels dark, mid, bright."""
    store = EventStore(js, subjects.STREAM_DATASETS, codec.dataset_events)
    spec = DatasetSpec(folder_train="/x", resize_width=16, resize_height=16, resize_channels=3)
    built = DatasetBuilt(
        dataset_id=dataset_id,
        labels=LABELS,
        labels_blob=ref("l"),
        splits=[],
        mean=ref("m"),
        mean_jpg=ref("mj"),
        image_width=16,
        image_height=16,
        image_channels=3,
    )
    created = DatasetCreated(dataset_id=dataset_id, name="ds", spec=spec)
    await store.append(subjects.dataset_events(dataset_id), [created, built], 0)


async def add_model(js, tmp: Path, model_id: str, dataset_id: str, epochs: dict) -> None:
    """Append ModelCreated and one SnapshotSaved per epoch, with its exported net uploaded."""
    events: list = [
        ModelCreated(
            model_id=model_id, name=model_id, dataset_id=dataset_id, spec=TrainSpec(crop_size=12)
        )
    ]
    for epoch, centers in epochs.items():
        symbol, params = export_net(tmp / f"{model_id}-{epoch:g}", centers, SHAPE)
        prefix = f"{model_id}/snapshot-{epoch:g}"
        events.append(
            SnapshotSaved(
                model_id=model_id,
                epoch=epoch,
                symbol=await put_file(js, subjects.BUCKET_MODELS, f"{prefix}-symbol.json", symbol),
                params=await put_file(js, subjects.BUCKET_MODELS, f"{prefix}.params", params),
                input_shape=list(SHAPE),
            )
        )
    store = EventStore(js, subjects.STREAM_MODELS, codec.model_events)
    await store.append(subjects.model_events(model_id), events, 0)


@pytest.fixture
async def service(nats_url: str, js, tmp_path: Path) -> AsyncIterator[ServiceHost]:
    """The inference service running in this process, with dataset `d` and models `m`, `empty`."""
    await add_dataset(js, "d")
    await add_model(js, tmp_path / "nets", "m", "d", {1.0: REVERSED, 2.0: NORMAL})
    await add_model(js, tmp_path / "nets", "empty", "d", {})
    settings = Settings(nats_url=nats_url, data_dir=str(tmp_path / "data"), port=-1)
    async with running_inference(settings) as host:
        yield host


async def classify(nc, **fields) -> Classified | Rejected:
    """Send ClassifyOne and decode the answer."""
    body, rejected = await request(
        nc, subjects.CMD_INFERENCE_CLASSIFY_ONE, ClassifyOne(**{"principal": ALICE, **fields})
    )
    return rejected or codec.classify_reply.decode(body)


async def test_classify_one_puts_the_right_label_first_with_the_latest_snapshot(
    service, nc
) -> None:
    """White, black and grey images get bright, dark and mid first from epoch 2's network."""
    for level, expected in ((255, "bright"), (0, "dark"), (128, "mid")):
        reply = await classify(nc, job_id="m", image=png(level))
        assert isinstance(reply, Classified), reply
        assert reply.snapshot_epoch == 2.0
        assert reply.predictions[0][0] == expected
        assert len(reply.predictions) <= 5
        assert [p for _, p in reply.predictions] == sorted(
            (p for _, p in reply.predictions), reverse=True
        )
        assert sum(p for _, p in reply.predictions) == pytest.approx(100.0, abs=0.05)


async def test_classify_one_uses_the_snapshot_epoch_asked_for(service, nc) -> None:
    """Epoch 1's (reversed) network calls a white image dark; top_k bounds the list."""
    reply = await classify(nc, job_id="m", image=png(255), snapshot_epoch=1.0, top_k=2)
    assert isinstance(reply, Classified), reply
    assert reply.snapshot_epoch == 1.0
    assert [label for label, _ in reply.predictions] == ["dark", "mid"]


async def test_classify_one_reads_an_uploaded_image_from_the_object_store(service, nc, js) -> None:
    """An `image_blob` in the uploads bucket is classified like inline bytes."""
    blob = await put_bytes(js, subjects.BUCKET_UPLOADS, "u/white.png", png(255, (300, 200)))
    reply = await classify(nc, job_id="m", image_blob=blob)
    assert isinstance(reply, Classified) and reply.predictions[0][0] == "bright"


async def test_second_request_reuses_the_loaded_network(service, nc) -> None:
    """The network is loaded once per snapshot; later requests hit the in-memory cache."""
    for _ in range(3):
        assert isinstance(await classify(nc, job_id="m", image=png(10)), Classified)
    assert service.metrics.value("nets_loaded") == 1
    assert isinstance(await classify(nc, job_id="m", image=png(10), snapshot_epoch=1), Classified)
    assert service.metrics.value("nets_loaded") == 2


@pytest.mark.parametrize("job_id", ["nope", "*", "m.>", ""])
async def test_unknown_job_is_refused_with_404(service, nc, job_id) -> None:
    """A job id with no model events (or not a valid id at all) is 404 naming job_id."""
    reply = await classify(nc, job_id=job_id, image=png(0))
    assert isinstance(reply, Rejected) and (reply.code, reply.field) == (404, "job_id")


async def test_deleted_model_is_refused_with_404(service, nc, js) -> None:
    """Once ModelDeleted is appended, the model that just classified is not found."""
    assert isinstance(await classify(nc, job_id="m", image=png(0)), Classified)
    store = EventStore(js, subjects.STREAM_MODELS, codec.model_events)
    await store.append(subjects.model_events("m"), [ModelDeleted(model_id="m")], None)
    reply = await classify(nc, job_id="m", image=png(0))
    assert isinstance(reply, Rejected) and reply.code == 404


async def test_model_without_snapshot_is_refused_with_409(service, nc) -> None:
    """A model that has saved no snapshot yet is a 409 telling the user to wait."""
    reply = await classify(nc, job_id="empty", image=png(0))
    assert reply == Rejected(
        code=409, message="Model empty has no snapshot yet: wait for its first epoch to finish"
    )


async def test_unknown_snapshot_epoch_is_refused_with_400(service, nc) -> None:
    """An epoch without a snapshot is a 400 on snapshot_epoch listing epochs 1 and 2."""
    reply = await classify(nc, job_id="m", image=png(0), snapshot_epoch=3.0)
    assert isinstance(reply, Rejected)
    assert (reply.code, reply.field) == (400, "snapshot_epoch")
    assert "1, 2" in reply.message


async def test_non_image_bytes_are_refused_with_400(service, nc) -> None:
    """Bytes that are no image are a 400 on image_file, not a 500, in a user's words (no
    "Pillow", no "cannot identify")."""
    reply = await classify(nc, job_id="m", image=b"%PDF-1.4 definitely not a picture")
    assert isinstance(reply, Rejected)
    assert (reply.code, reply.field) == (400, "image_file")
    assert reply.message == "The file is not an image (PNG, JPEG, …)"


async def test_truncated_png_is_refused_with_400(service, nc) -> None:
    """A PNG cut in half is a 400 on image_file."""
    noise = Image.effect_noise((64, 64), 64).convert("RGB")
    out = io.BytesIO()
    noise.save(out, format="PNG")
    reply = await classify(nc, job_id="m", image=out.getvalue()[: len(out.getvalue()) // 2])
    assert isinstance(reply, Rejected)
    assert (reply.code, reply.field) == (400, "image_file")
    assert reply.message.startswith("The image is damaged or incomplete (cannot decode image: ")


async def test_missing_image_and_bad_top_k_are_refused_with_400(service, nc) -> None:
    """No image at all names image_file; a top_k under 1 names top_k."""
    reply = await classify(nc, job_id="m")
    assert isinstance(reply, Rejected) and (reply.code, reply.field) == (400, "image_file")
    reply = await classify(nc, job_id="m", image=png(0), top_k=0)
    assert isinstance(reply, Rejected) and (reply.code, reply.field) == (400, "top_k")


async def test_upload_outside_the_uploads_bucket_or_missing_is_refused(service, nc) -> None:
    """An image_blob naming another bucket, or an upload that is not there, is a 400."""
    for blob in (
        BlobRef(bucket=subjects.BUCKET_MODELS, name="m/snapshot-2.params"),
        BlobRef(bucket=subjects.BUCKET_UPLOADS, name="u/none.png"),
    ):
        reply = await classify(nc, job_id="m", image_blob=blob)
        assert isinstance(reply, Rejected) and (reply.code, reply.field) == (400, "image_file")


async def test_corrupt_snapshot_is_a_500_without_a_traceback(service, nc, js) -> None:
    """A snapshot whose params are garbage is refused with a one-line 500, the service lives on."""
    store = EventStore(js, subjects.STREAM_MODELS, codec.model_events)
    history, _ = await store.load(subjects.model_events("m"))
    bad = await put_bytes(js, subjects.BUCKET_MODELS, "m/snapshot-3.params", b"garbage")
    snap = SnapshotSaved(
        model_id="m", epoch=3.0, symbol=history[-1].symbol, params=bad, input_shape=list(SHAPE)
    )
    await store.append(subjects.model_events("m"), [snap], None)
    reply = await classify(nc, job_id="m", image=png(0))
    assert isinstance(reply, Rejected) and reply.code == 500
    assert reply.message.startswith("Snapshot 3 of model m cannot be used: ")
    assert "Traceback" not in reply.message and "\n" not in reply.message
    assert isinstance(await classify(nc, job_id="m", image=png(0), snapshot_epoch=2), Classified)
