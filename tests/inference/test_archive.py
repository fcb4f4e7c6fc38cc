"""Classify many from an uploaded zip/tar archive: safe extraction, class folders as the truth."""

from __future__ import annotations

import asyncio
import io
import stat
import tarfile
import zipfile
from pathlib import Path

import msgspec
import pytest
from nats.js.errors import ObjectDeletedError, ObjectNotFoundError

from digits_inference import archive
from digits_inference.archive import ArchiveRefused, Limits
from digits_proto import codec, subjects
from digits_proto.base import BlobRef
from digits_proto.inference import ClassifyMany, ClassifyManyQueued, ManyResult, ManyStatus
from digits_proto.runtime import put_bytes, read_bytes, request
from tests.fakes.principals import ALICE
from tests.inference.test_many import service  # noqa: F401 - the fixture
from tests.inference.test_service import png

NO_LIST = BlobRef(bucket="", name="")


def zip_of(members: dict[str, bytes]) -> bytes:
    """A zip holding `members` (name → bytes)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return out.getvalue()


def tgz_of(members: dict[str, bytes], link: tuple[str, str] | None = None) -> bytes:
    """A tar.gz holding `members`, and a symlink `link` = (name, target) when given."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as t:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
        if link is not None:
            info = tarfile.TarInfo(link[0])
            info.type, info.linkname = tarfile.SYMTYPE, link[1]
            t.addfile(info)
    return out.getvalue()


CLASSES = {
    "set/dark/a.png": png(0),
    "set/bright/b.png": png(255),
    "set/bright/c.png": png(250),
    "set/mid/d.png": png(128),
    "set/other/e.png": png(255),  # a folder that is no label: no ground truth
    "set/readme.txt": b"not an image: skipped",
    "__MACOSX/set/._a.png": b"resource fork: skipped",
}


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("maker", [zip_of, tgz_of])
def test_extract_keeps_only_images_and_labels_them_by_folder(tmp_path, maker) -> None:
    """zip and tar.gz alike: five images extracted, class folders matched to the labels."""
    path = write(tmp_path, "a.bin", maker(CLASSES))
    members = archive.extract(path, tmp_path / "out", Limits())
    entries = archive.entries(members, tmp_path / "out", ("dark", "mid", "bright"), Limits())
    assert [(e.path, e.label) for e in entries] == [
        ("set/dark/a.png", 0),
        ("set/bright/b.png", 2),
        ("set/bright/c.png", 2),
        ("set/mid/d.png", 1),
        ("set/other/e.png", None),
    ]
    assert all(Path(e.resolved).read_bytes() == CLASSES[e.path] for e in entries)
    assert not (tmp_path / "out" / "set" / "readme.txt").exists()


@pytest.mark.parametrize(
    "name", ["../evil.png", "set/../../evil.png", "/etc/evil.png", "C:/evil.png"]
)
@pytest.mark.parametrize("maker", [zip_of, tgz_of])
def test_member_names_escaping_the_folder_refuse_the_archive(tmp_path, maker, name) -> None:
    """`..`, absolute and drive names refuse the whole archive; nothing is written outside."""
    path = write(tmp_path, "a.bin", maker({"ok/a.png": png(0), name: png(1)}))
    with pytest.raises(ArchiveRefused, match=r"absolute path|outside the archive"):
        archive.extract(path, tmp_path / "out" / "x", Limits())
    assert not (tmp_path / "out" / "evil.png").exists()
    assert not (tmp_path / "evil.png").exists()


def test_links_in_a_tar_refuse_the_archive(tmp_path) -> None:
    """A symlink member (to /etc/passwd here) is refused, never followed."""
    path = write(tmp_path, "a.tgz", tgz_of({"a.png": png(0)}, link=("b.png", "/etc/passwd")))
    with pytest.raises(ArchiveRefused, match="is a link"):
        archive.list_images(path, Limits())


def test_links_in_a_zip_refuse_the_archive(tmp_path) -> None:
    """A Unix zip's symlink member (file type bits S_IFLNK) is refused."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        info = zipfile.ZipInfo("b.png")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        z.writestr(info, "/etc/passwd")
    path = write(tmp_path, "l.zip", out.getvalue())
    with pytest.raises(ArchiveRefused, match="is a symbolic link"):
        archive.list_images(path, Limits())


def test_member_count_and_expansion_limits(tmp_path) -> None:
    """Too many members, or images expanding past the bound (a zip bomb), are refused."""
    many = write(tmp_path, "m.zip", zip_of({f"{i}.png": b"x" for i in range(20)}))
    with pytest.raises(ArchiveRefused, match="too many members"):
        archive.list_images(many, Limits(max_members=10))
    bomb = write(tmp_path, "b.zip", zip_of({"a.png": bytes(4 << 20), "b.png": bytes(4 << 20)}))
    assert bomb.stat().st_size < 64 << 10  # 8 MB of zeros compresses to a few KB
    with pytest.raises(ArchiveRefused, match="expands past the size limit"):
        archive.extract(bomb, tmp_path / "out", Limits(max_expanded=6 << 20))


def test_an_image_past_the_per_image_limit_is_not_kept_and_its_entry_says_why(tmp_path) -> None:
    """The other images are extracted; the large one is named too large, with its size."""
    path = write(tmp_path, "a.zip", zip_of({"a.png": png(0), "big.png": bytes(3 << 20)}))
    limits = Limits(max_image=2 << 20)
    members = archive.extract(path, tmp_path / "out", limits)
    small, big = archive.entries(members, tmp_path / "out", ("a",), limits)
    assert small.resolved is not None and not small.error
    assert big.resolved is None and big.error.startswith("File too large")
    assert not (tmp_path / "out" / "big.png").exists()


def test_not_an_archive_is_refused(tmp_path) -> None:
    """Random bytes are neither zip nor tar."""
    path = write(tmp_path, "x.zip", b"hello, not an archive" * 100)
    with pytest.raises(ArchiveRefused):
        archive.list_images(path, Limits())


async def run_archive(nc, js, data: bytes, **fields) -> ManyStatus | object:
    """Upload an archive, queue the job, wait for its final status (or the refusal)."""
    ref = await put_bytes(js, subjects.BUCKET_UPLOADS, "archives/x/images.tgz", data)
    cmd = ClassifyMany(
        job_id="m",
        image_list=NO_LIST,
        image_archive=ref,
        background=True,
        **{"principal": ALICE, **fields},
    )
    body, rejected = await request(nc, subjects.CMD_INFERENCE_CLASSIFY_MANY, cmd, 30)
    if rejected is not None:
        return rejected
    queued = codec.classify_many_reply.decode(body)
    assert isinstance(queued, ClassifyManyQueued)
    for _ in range(300):
        # read_bytes, not nats-py's get: the status is rewritten in place while the job runs,
        # and a get that loses that race waits forever on the purged chunks.
        raw = await read_bytes(js, subjects.BUCKET_UPLOADS, queued.status.name)
        status = msgspec.json.decode(raw, type=ManyStatus)
        if status.status in ("Done", "Error"):
            return status
        await asyncio.sleep(0.05)
    raise AssertionError("the job did not finish")


async def test_archive_job_classifies_with_class_folders_as_ground_truth(service, nc, js) -> None:  # noqa: F811
    """A tar.gz of class folders runs as a job: accuracy from the folders, files cleaned up."""
    status = await run_archive(nc, js, tgz_of(CLASSES))
    assert isinstance(status, ManyStatus) and status.status == "Done", status
    assert status.total == 5
    store = await js.object_store(subjects.BUCKET_UPLOADS)
    result = msgspec.json.decode((await store.get(status.result.name)).data, type=ManyResult)
    assert [r.path for r in result.results][:2] == ["set/dark/a.png", "set/bright/b.png"]
    assert result.top1_accuracy == 100.0 and result.confusion == [[1, 0, 0], [0, 1, 0], [0, 0, 2]]
    extracted = service.parent / "data" / "archives"
    assert [p for p in extracted.iterdir()] == []  # extraction folder and download removed
    with pytest.raises((ObjectNotFoundError, ObjectDeletedError)):  # the archive blob too
        await store.get_info("archives/x/images.tgz")


async def test_archive_with_parent_members_is_refused_before_queueing(service, nc, js) -> None:  # noqa: F811
    """`../` in a member: a 400 naming image_archive, no job."""
    reply = await run_archive(nc, js, zip_of({"ok/a.png": png(0), "../../x.png": png(1)}))
    assert getattr(reply, "code", None) == 400 and reply.field == "image_archive", reply
    assert "outside the archive" in reply.message


async def test_top_n_from_an_archive_builds_mosaics_from_the_extracted_files(
    service,  # noqa: F811
    nc,
    js,
) -> None:
    """top_n over an archive: each class's best image is read back for its mosaic."""
    status = await run_archive(nc, js, zip_of(CLASSES), top_n=1)
    assert isinstance(status, ManyStatus) and status.status == "Done", status
    store = await js.object_store(subjects.BUCKET_UPLOADS)
    result = msgspec.json.decode((await store.get(status.result.name)).data, type=ManyResult)
    by_label = {t.label: t for t in result.top_n}
    assert by_label["dark"].paths == ["set/dark/a.png"]
    assert all(t.mosaic.startswith("data:image/png;base64,") for t in result.top_n)
