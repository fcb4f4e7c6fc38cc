"""The shared archive extractor's limits: size (headers and stream), members, free-space floor."""

from __future__ import annotations

import io
import shutil
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from digits_proto.runtime import MIN_FREE, ArchiveRefused, extract_archive
from tests.imaging.bombs import MIB, tar_bomb, zip_bomb

GIB = 1 << 30


def extract(path: Path, dest: Path, max_bytes: int = GIB, **kw) -> None:
    extract_archive(path, dest, max_bytes, kw.pop("max_members", 1000), "not an archive", **kw)


def left_behind(root: Path) -> list[Path]:
    return sorted(root.rglob("*"))


def zip_of(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_a_2_gib_zip_bomb_is_refused_from_its_headers_leaving_nothing(tmp_path: Path) -> None:
    """A 2 MB zip of one 2 GiB member, against a 1 GiB limit: refused naming the limit before
    a byte is written, and the destination is gone."""
    bomb = zip_bomb(tmp_path / "bomb.zip", mib=2048)
    assert bomb.stat().st_size < 3 * MIB
    dest = tmp_path / "job" / "upload"
    with pytest.raises(ArchiveRefused, match=f"size limit of {GIB} bytes"):
        extract(bomb, dest, max_bytes=GIB)
    assert left_behind(tmp_path) == [bomb]


def test_a_2_gib_tar_gz_bomb_is_refused_from_its_headers_leaving_nothing(tmp_path: Path) -> None:
    """The same bomb as a tar.gz: the member header's size refuses it before it is expanded."""
    bomb = tar_bomb(tmp_path / "bomb.tgz", mib=2048)
    assert bomb.stat().st_size < 3 * MIB
    with pytest.raises(ArchiveRefused, match=f"size limit of {GIB} bytes"):
        extract(bomb, tmp_path / "job" / "upload", max_bytes=GIB)
    assert left_behind(tmp_path) == [bomb]


def test_a_member_whose_header_lies_about_its_size_is_refused_leaving_nothing(
    tmp_path: Path,
) -> None:
    """Headers that say 1 MiB over 64 MiB of data: reading stops at the declared size and the
    archive is refused as unreadable; nothing written stays."""
    liar = zip_bomb(tmp_path / "liar.zip", mib=64, declared=MIB)
    dest = tmp_path / "out"
    with pytest.raises(ArchiveRefused, match="cannot be read"):
        extract(liar, dest, max_bytes=8 * MIB)
    assert left_behind(tmp_path) == [liar]


def test_members_together_past_the_limit_are_refused_from_their_headers(tmp_path: Path) -> None:
    """Two members each under the limit but over it together: the header sum refuses them."""
    (tmp_path / "a.zip").write_bytes(zip_of({"a/x.bin": bytes(3 * MIB), "a/y.bin": bytes(3 * MIB)}))
    with pytest.raises(ArchiveRefused, match=f"size limit of {4 * MIB} bytes"):
        extract(tmp_path / "a.zip", tmp_path / "out", max_bytes=4 * MIB)
    assert not (tmp_path / "out").exists()


def test_too_many_members_is_refused_naming_the_limit(tmp_path: Path) -> None:
    """Eleven files against a limit of ten members."""
    (tmp_path / "a.zip").write_bytes(zip_of({f"c/{i}.png": b"x" for i in range(11)}))
    with pytest.raises(ArchiveRefused, match=r"too many members .*the limit is 10"):
        extract(tmp_path / "a.zip", tmp_path / "out", max_members=10)
    assert not (tmp_path / "out").exists()


def test_a_refusal_keeps_what_was_in_the_destination_before(tmp_path: Path) -> None:
    """Only what the extraction wrote is removed: an existing folder and file stay."""
    dest = tmp_path / "dest"
    (dest / "c").mkdir(parents=True)
    (dest / "c" / "mine.txt").write_text("keep")
    (tmp_path / "a.zip").write_bytes(zip_of({"c/new.png": b"x", "d/new.png": b"y"}))
    with pytest.raises(ArchiveRefused, match="too many members"):
        extract(tmp_path / "a.zip", dest, max_members=1)
    assert left_behind(dest) == [dest / "c", dest / "c" / "mine.txt"]


def test_the_default_free_space_floor_is_one_gib() -> None:
    """Services get a 1 GiB floor unless their settings say otherwise."""
    assert MIN_FREE == GIB


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 20 MiB file system (tmpfs; needs root), unmounted afterwards."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_the_free_space_floor_refuses_from_the_headers_on_a_small_disk(
    small_disk: Path, tmp_path: Path
) -> None:
    """12 MiB into a 20 MiB disk with a 10 MiB floor is refused before writing, naming the
    floor; with a 4 MiB floor the same archive unpacks."""
    archive = tmp_path / "a.zip"
    archive.write_bytes(zip_of({"c/zeros.bin": bytes(12 * MIB)}))
    with pytest.raises(ArchiveRefused, match=f"under the free-space floor of {10 * MIB} bytes"):
        extract(archive, small_disk / "job", min_free=10 * MIB)
    assert left_behind(small_disk) == []
    extract(archive, small_disk / "job", min_free=4 * MIB)
    assert (small_disk / "job" / "c" / "zeros.bin").stat().st_size == 12 * MIB


def test_the_free_space_floor_is_checked_again_while_writing(
    small_disk: Path, tmp_path: Path
) -> None:
    """3000 one-byte files declare 3000 bytes but take a 4 KiB page each: the floor stops them
    as they land, and what was written is removed."""
    archive = tmp_path / "many.zip"
    archive.write_bytes(zip_of({f"c/{i}.png": b"x" for i in range(3000)}))
    with pytest.raises(ArchiveRefused, match="free-space floor"):
        extract(archive, small_disk / "job", min_free=10 * MIB, max_members=5000)
    assert left_behind(small_disk) == []
    assert shutil.disk_usage(small_disk).used < MIB
