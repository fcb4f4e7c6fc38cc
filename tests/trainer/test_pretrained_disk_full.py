"""Make pretrained (`/models/<id>/to_pretrained`) on a full disk (a real 1 MiB tmpfs): a 507
naming the cache folder and the node, no partial file left; with space back it works."""

from __future__ import annotations

from pathlib import Path

import pytest

from digits_proto import subjects
from digits_proto.models import MakePretrained
from digits_proto.replies import Accepted
from digits_proto.runtime import put_bytes
from digits_trainer.errors import StorageFailed
from digits_trainer.pretrained import Imports, make_pretrained
from digits_trainer.store import Store
from tests.fakes.principals import ADMIN
from tests.inference.test_service import NORMAL, add_dataset, add_model
from tests.mounts import fill, tmpfs

pytestmark = pytest.mark.timeout(120)


async def test_make_pretrained_on_a_full_disk_is_a_507_naming_the_cache(js, tmp_path) -> None:
    """The snapshot's files are copied through the node's blob cache: with that disk full
    the command is refused 507 "No space left on device writing <cache>… on node n7", the
    cache holds no partial blob; once space is back the same command registers the model."""
    await add_dataset(js, "d")
    await add_model(js, tmp_path / "nets", "m", "d", {2.0: NORMAL})
    for name in ("m", "mj"):  # the dataset's mean files, which the new model keeps a copy of
        await put_bytes(js, subjects.BUCKET_DATASETS, name, b"mean")
    with tmpfs(tmp_path / "disk", size="1m") as disk:
        cache = disk / "cache"
        imports = Imports(None, disk / "imports", cache, 1 << 20, node_id="n7")  # type: ignore[arg-type]
        filler = fill(disk)
        command = MakePretrained(model_id="m", principal=ADMIN)
        with pytest.raises(StorageFailed) as refused:
            await make_pretrained(Store.on(js), imports, command)
        message = refused.value.message
        assert refused.value.code == 507
        assert message.startswith("No space left on device writing "), message
        assert str(cache) in message and message.endswith(" on node n7")
        assert not [p for p in Path(cache).rglob("*") if p.is_file()]
        filler.unlink()
        assert isinstance(await make_pretrained(Store.on(js), imports, command), Accepted)
