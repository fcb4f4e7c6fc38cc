"""Uploaded archives (method `upload`): class folders unpacked, hostile members refused."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from digits_datasets.archive import extract
from digits_datasets.errors import BuildError
from digits_datasets.settings import Settings
from digits_proto import codec, subjects
from digits_proto.datasets import CreateDataset, DatasetBuilt, DatasetFailed, DatasetSpec
from digits_proto.runtime import put_bytes, request
from tests.fakes.principals import ALICE

from .test_service import wait_terminal

LIMIT = 10 * 1024 * 1024


def png_bytes(color: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (10, 8), color).save(buf, "PNG")
    return buf.getvalue()


def make_zip(members: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o120777 << 16  # a symlink, as `zip -y` stores it
            zf.writestr(info, target)
    return buf.getvalue()


def make_tar(members: list[tarfile.TarInfo | tuple[str, bytes]], mode: str = "w:gz") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for m in members:
            if isinstance(m, tarfile.TarInfo):
                tf.addfile(m)
            else:
                info = tarfile.TarInfo(m[0])
                info.size = len(m[1])
                tf.addfile(info, io.BytesIO(m[1]))
    return buf.getvalue()


def classes(n: int = 3) -> dict[str, bytes]:
    return {
        f"{c}/img{i}.png": png_bytes((i * 40, 0, 0)) for c in ("cats", "dogs") for i in range(n)
    }


def special(name: str, kind: bytes, target: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


def test_zip_and_tar_of_class_folders_unpack_and_a_wrapper_folder_is_skipped(
    tmp_path: Path,
) -> None:
    """A zip and a tar.gz both unpack; one top folder around the classes is looked through."""
    (tmp_path / "a.zip").write_bytes(make_zip(classes()))
    assert extract(tmp_path / "a.zip", tmp_path / "z", LIMIT) == tmp_path / "z"
    assert sorted(p.name for p in (tmp_path / "z").iterdir()) == ["cats", "dogs"]
    wrapped = [(f"photos/{k}", v) for k, v in classes().items()]
    (tmp_path / "b.tgz").write_bytes(make_tar(wrapped))
    assert extract(tmp_path / "b.tgz", tmp_path / "t", LIMIT) == tmp_path / "t" / "photos"


@pytest.mark.parametrize(
    ("archive", "words"),
    [
        (make_zip({"../evil.png": b"x"}), "outside the archive"),
        (make_zip({"cats/../../evil.png": b"x"}), "outside the archive"),
        (make_zip({"/tmp/evil.png": b"x"}), "absolute path"),
        (make_zip({"cats/a.png": b"x"}, links={"cats/link.png": "/etc/passwd"}), "symbolic link"),
        (make_tar([("../evil.png", b"x")]), "outside the archive"),
        (make_tar([("/abs/evil.png", b"x")]), "absolute path"),
        (make_tar([special("cats/l.png", tarfile.SYMTYPE, "/etc/passwd")]), "is a link"),
        (
            make_tar([("cats/a.png", b"x"), special("cats/h.png", tarfile.LNKTYPE, "cats/a.png")]),
            "is a link",
        ),
        (make_tar([special("cats/dev.png", tarfile.CHRTYPE)]), "special file"),
        (make_tar([special("cats/fifo.png", tarfile.FIFOTYPE)]), "special file"),
        (b"just some bytes, not an archive", "not a zip or tar"),
        (make_zip(classes())[:200], "not a zip or tar"),
    ],
)
def test_hostile_archives_are_refused_and_nothing_lands_outside(
    tmp_path: Path, archive: bytes, words: str
) -> None:
    """Traversal, absolute paths, links, devices and garbage are refused by name."""
    src = tmp_path / "up" / "archive.bin"
    src.parent.mkdir()
    src.write_bytes(archive)
    dest = tmp_path / "job" / "upload"
    with pytest.raises(BuildError, match=words):
        extract(src, dest, LIMIT)
    outside = {p for p in tmp_path.rglob("*") if not p.is_relative_to(tmp_path / "job")}
    assert outside == {src.parent, src}  # nothing was written beside the job's folder


def test_an_archive_expanding_past_the_limit_is_refused(tmp_path: Path) -> None:
    """A small zip of zeros that would expand past the limit stops at the limit."""
    (tmp_path / "bomb.zip").write_bytes(make_zip({"cats/a.png": b"\0" * (3 * 1024 * 1024)}))
    assert (tmp_path / "bomb.zip").stat().st_size < 50_000
    with pytest.raises(BuildError, match="size limit"):
        extract(tmp_path / "bomb.zip", tmp_path / "out", max_bytes=1024 * 1024)
    with pytest.raises(BuildError, match="too many members"):
        extract(tmp_path / "bomb.zip", tmp_path / "out2", LIMIT, max_members=0)


async def create_upload(nc, js, data: bytes) -> str:
    ref = await put_bytes(js, subjects.BUCKET_UPLOADS, "u/archive.tar.gz", data)
    spec = DatasetSpec(
        method="upload", upload_archive=ref, folder_pct_val=0, resize_width=8, resize_height=8
    )
    body, rejected = await request(
        nc, subjects.CMD_DATASETS_CREATE, CreateDataset(name="u", spec=spec, principal=ALICE)
    )
    assert rejected is None, rejected
    return codec.command_reply.decode(body).id


async def test_uploaded_archive_builds_and_a_hostile_one_fails_naming_the_member(
    service: Settings, nc, js
) -> None:
    """A tar.gz of class folders builds; one with `../` fails with the member's name."""
    built = (
        await wait_terminal(js, await create_upload(nc, js, make_tar(list(classes().items()))))
    )[-1]
    assert isinstance(built, DatasetBuilt), built
    assert built.labels == ["cats", "dogs"] and built.splits[0].class_counts == [3, 3]
    evil = make_tar([*classes().items(), ("../../escape.png", b"x")])
    failed = (await wait_terminal(js, await create_upload(nc, js, evil)))[-1]
    assert isinstance(failed, DatasetFailed) and "../../escape.png" in failed.error
    assert not (Path(service.data_dir).parent / "escape.png").exists()
    assert not list(Path(service.jobs_dir()).glob("*"))  # work files removed
