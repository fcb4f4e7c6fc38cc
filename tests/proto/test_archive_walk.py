"""One walk of an archive's members for every use: listing checks what extracting checks, and
`keep`/`max_file` choose and cap the files without a second walker."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest

from digits_proto.runtime import ArchiveRefused, Member, extract_archive, list_archive
from tests.fakes.archives import write_tgz, write_zip

FILES = {"set/a.png": b"a" * 10, "set/notes.txt": b"n", "set/b.png": b"b" * 5000}


def zipped(tmp_path: Path, members: dict[str, bytes]) -> Path:
    return write_zip(tmp_path / "a.zip", members)


def tarred(tmp_path: Path, members: dict[str, bytes]) -> Path:
    return write_tgz(tmp_path / "a.tgz", members)


def pngs(rel: PurePosixPath) -> bool:
    return rel.suffix == ".png"


@pytest.mark.parametrize("pack", [zipped, tarred])
def test_listing_and_extracting_keep_the_same_files(tmp_path: Path, pack) -> None:
    """The kept files, in archive order, listed with declared sizes and written whole."""
    path = pack(tmp_path, FILES)
    listed = list_archive(path, 1 << 20, 10, "no", keep=pngs)
    written = extract_archive(path, tmp_path / "out", 1 << 20, 10, "no", keep=pngs)
    assert listed == written == [Member("set/a.png", 10), Member("set/b.png", 5000)]
    assert sorted(p.name for p in (tmp_path / "out" / "set").iterdir()) == ["a.png", "b.png"]


@pytest.mark.parametrize("pack", [zipped, tarred])
def test_a_file_past_max_file_is_counted_but_not_kept(tmp_path: Path, pack) -> None:
    """Its member says how big it was; nothing of it stays on disk."""
    written = extract_archive(
        pack(tmp_path, FILES), tmp_path / "out", 1 << 20, 10, "no", max_file=100
    )
    assert [m.name for m in written if m.size > 100] == ["set/b.png"]
    assert not (tmp_path / "out" / "set" / "b.png").exists()
    assert (tmp_path / "out" / "set" / "a.png").read_bytes() == FILES["set/a.png"]


def test_listing_refuses_what_extracting_refuses(tmp_path: Path) -> None:
    """An escaping name refuses the archive even when `keep` would have skipped it."""
    path = zipped(tmp_path, {"ok.png": b"x", "../evil.txt": b"x"})
    with pytest.raises(ArchiveRefused, match="outside the archive"):
        list_archive(path, 1 << 20, 10, "no", keep=pngs)
    with pytest.raises(ArchiveRefused, match="too many members"):
        list_archive(zipped(tmp_path, FILES), 1 << 20, 2, "no")
