"""Who may classify, decided by the inference service itself (the gateway bypassed)."""

from __future__ import annotations

import pytest

from digits_inference import access
from digits_inference.errors import NoPrincipal, ReadOnly
from digits_proto import codec, subjects
from digits_proto.base import BlobRef
from digits_proto.inference import Classified, ClassifyMany, ClassifyOne, ExportModel
from digits_proto.runtime import request
from tests.fakes.principals import ADMIN, ALICE, BOB, VERA
from tests.inference.test_service import png, service  # noqa: F401 (the fixture)


@pytest.mark.parametrize("who", [ALICE, BOB, VERA, ADMIN])
def test_every_principal_downloads_any_model(who) -> None:
    """Reads are everyone's: viewers included, whoever owns the model."""
    assert access.reader(who) is who


def test_viewers_classify_nothing_and_nobody_is_refused() -> None:
    """Classifying (one image or many) is for users and admins; no principal, nothing at all."""
    assert access.runner(BOB) is BOB
    with pytest.raises(ReadOnly) as info:
        access.runner(VERA)
    assert info.value.code == 403
    for check in (access.reader, access.runner):
        with pytest.raises(NoPrincipal):
            check(None)


async def test_the_service_refuses_commands_without_principal_and_viewers(
    service,  # noqa: F811
    nc,
    js,
) -> None:
    """On the bus with no gateway: classify one, download and classify many without a
    principal are refused (403); vera (a viewer) classifies nothing; bob classifies one image
    with alice's model."""
    image = png(255)
    no_list = BlobRef(bucket="", name="")
    anonymous = [
        (subjects.CMD_INFERENCE_CLASSIFY_ONE, ClassifyOne(job_id="m", image=image)),
        (subjects.CMD_INFERENCE_EXPORT, ExportModel(job_id="m")),
        (
            subjects.CMD_INFERENCE_CLASSIFY_MANY,
            ClassifyMany(job_id="m", image_list=no_list, image_list_text="a.png"),
        ),
    ]
    for subject, command in anonymous:
        _, rejected = await request(nc, subject, command, 30)
        assert rejected is not None and rejected.code == 403, subject
        assert "no principal" in rejected.message

    many = ClassifyMany(job_id="m", image_list=no_list, image_list_text="a.png", principal=VERA)
    _, rejected = await request(nc, subjects.CMD_INFERENCE_CLASSIFY_MANY, many, 30)
    assert rejected is not None and rejected.code == 403 and "viewer" in rejected.message

    one = ClassifyOne(job_id="m", image=image, principal=VERA)
    _, rejected = await request(nc, subjects.CMD_INFERENCE_CLASSIFY_ONE, one, 30)
    assert rejected is not None and rejected.code == 403 and "viewer" in rejected.message

    one = ClassifyOne(job_id="m", image=image, principal=BOB)
    body, rejected = await request(nc, subjects.CMD_INFERENCE_CLASSIFY_ONE, one, 30)
    assert rejected is None, rejected
    reply = codec.classify_reply.decode(body)
    assert isinstance(reply, Classified) and reply.predictions[0][0] == "bright"
