"""Pretrained-model uploads through the shared extractor: a zip bomb is a 400 on `archive`
naming the limit, and nothing it started to write is left."""

from __future__ import annotations

from pathlib import Path

import pytest

from digits_trainer import unpack
from digits_trainer.errors import InvalidField
from tests.imaging.bombs import zip_bomb

GIB = 1 << 30


def test_a_zip_bomb_upload_is_a_400_on_archive_naming_the_limit(tmp_path: Path) -> None:
    """A 2 MB zip of a 2 GiB member against a 1 GiB import limit."""
    bomb = zip_bomb(tmp_path / "bomb.zip", mib=2048, name="model/w.params")
    with pytest.raises(InvalidField, match=f"size limit of {GIB} bytes") as e:
        unpack.extract(bomb, tmp_path / "work" / "archive", GIB)
    assert e.value.field == "archive"
    assert sorted(tmp_path.rglob("*")) == [bomb]
