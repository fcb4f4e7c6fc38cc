"""Folder checks and listing: roots, class count, extensions, recursion, link loops."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from digits_datasets.errors import InvalidField
from digits_datasets.folders import check_folder, is_image_name, scan_folder


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_extension_filter_is_case_insensitive_and_digits_exact() -> None:
    """The six DIGITS extensions pass in any case; others (gif, txt, tiff) do not."""
    for name in ("a.png", "b.JPG", "c.jpeg", "d.Bmp", "e.ppm", "f.PGM"):
        assert is_image_name(name)
    for name in ("a.gif", "b.txt", "c.tiff", "png", "d.png.txt"):
        assert not is_image_name(name)


def test_listing_is_recursive_sorted_and_skips_other_files(tmp_path: Path) -> None:
    """Images in nested folders count for their class; labels are the top folder names."""
    _touch(tmp_path / "b" / "x" / "y" / "deep.png")
    _touch(tmp_path / "b" / "top.JPG")
    _touch(tmp_path / "b" / "notes.txt")
    _touch(tmp_path / "a" / "one.bmp")
    _touch(tmp_path / ".hidden" / "h.png")
    classes, warnings = scan_folder(str(tmp_path), [str(tmp_path)])
    assert [name for name, _ in classes] == ["a", "b"]
    assert [Path(p).name for p in classes[1][1]] == ["top.JPG", "deep.png"]
    assert warnings == []


def test_symlink_loop_is_walked_once(tmp_path: Path) -> None:
    """A link back up the tree does not make the walk loop or count files twice."""
    _touch(tmp_path / "a" / "one.png")
    os.symlink(tmp_path / "a", tmp_path / "a" / "again")
    _touch(tmp_path / "b" / "two.png")
    classes, _ = scan_folder(str(tmp_path), [str(tmp_path)])
    assert len(classes[0][1]) == 1


def test_files_linking_outside_the_roots_are_skipped(tmp_path: Path) -> None:
    """An image symlinked from outside the data roots is left out with a warning."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    secret = _touch(outside / "secret.png")
    _touch(root / "a" / "ok.png")
    (root / "b").mkdir()
    os.symlink(secret, root / "b" / "link.png")
    classes, warnings = scan_folder(str(root), [str(root)])
    assert classes[1] == ("b", [])
    assert "outside" in warnings[0]


def test_links_fifos_and_image_named_folders_are_judged_one_by_one(tmp_path: Path) -> None:
    """Links inside the roots and dangling links are kept; a folder linked from outside, a FIFO
    and a link out are skipped with warnings; a folder named like an image is walked."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    _touch(outside / "far" / "q.jpg")
    a = _touch(root / "c" / "a.jpg")
    _touch(root / "c" / "dir.jpg" / "inner.png")
    os.symlink(a, root / "c" / "b_link.jpg")
    os.symlink(root / "missing.jpg", root / "c" / "c_dangling.jpg")
    os.symlink(outside / "far", root / "c" / "d_far")
    os.mkfifo(root / "c" / "e_fifo.png")
    _touch(root / "other" / "x.png")
    classes, warnings = scan_folder(str(root), [str(root)])
    names = [os.path.relpath(p, root / "c") for p in classes[0][1]]
    assert names == ["a.jpg", "b_link.jpg", "c_dangling.jpg", "dir.jpg/inner.png"]
    assert [w.split(": ")[1] for w in warnings] == [
        "not a regular file, skipped",
        "links outside the data folders, skipped",
    ]
    assert warnings[1].startswith(str(root / "c" / "d_far" / "q.jpg"))


def test_check_folder_accepts_a_folder_inside_the_roots(tmp_path: Path) -> None:
    """A folder with two class folders inside a root is accepted and returned resolved."""
    (tmp_path / "d" / "a").mkdir(parents=True)
    (tmp_path / "d" / "b").mkdir()
    assert check_folder(str(tmp_path / "d"), [str(tmp_path)]) == os.path.realpath(tmp_path / "d")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda t: "", "required"),
        (lambda t: "relative/path", "absolute"),
        (lambda t: "/etc", "outside"),
        (lambda t: str(t / "missing"), "does not exist"),
        (lambda t: str(_touch(t / "file.txt")), "does not exist"),
        (
            lambda t: str((t / "one" / "only").mkdir(parents=True) or t / "one"),
            "two subdirectories",
        ),
    ],
)
def test_check_folder_refusals_name_folder_train(tmp_path: Path, make, message: str) -> None:
    """Every bad folder is refused with field folder_train and a readable reason."""
    with pytest.raises(InvalidField) as info:
        check_folder(make(tmp_path), [str(tmp_path)])
    assert info.value.field == "folder_train" and message in info.value.message


def test_symlink_escaping_the_roots_is_refused(tmp_path: Path) -> None:
    """A link inside a root that points outside it is judged by its real path."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    (outside / "a").mkdir(parents=True)
    (outside / "b").mkdir()
    root.mkdir()
    os.symlink(outside, root / "link")
    with pytest.raises(InvalidField, match="outside"):
        check_folder(str(root / "link"), [str(root)])
