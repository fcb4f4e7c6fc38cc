"""The dataset page's "Classes" table: per class, the training AND validation images (DIGITS
showed both distributions side by side), from the real gateway's dataset JSON."""

from __future__ import annotations

import re

from tests.gateway.fake_backend import FakeBackend
from tests.gateway.helpers import until
from tests.gateway.test_datasets_routes import create


async def test_class_table_has_training_and_validation_counts(client, backend: FakeBackend) -> None:
    dataset_id = await create(client)
    await backend.build(dataset_id)  # train [3, 3], val [1, 1]

    async def built_page() -> str | None:
        r = await client.get(f"/datasets/{dataset_id}", headers={"Accept": "text/html"})
        return r.text if r.status_code == 200 and "Validation images</th>" in r.text else None

    html = await until(built_page)
    rows = re.findall(r'<tr class="class-row">(.*?)</tr>', html, re.S)
    counts = [
        (re.search(r"<th[^>]*>(.*?)</th>", row).group(1), re.findall(r'"class-count">(\d+)<', row))
        for row in rows
    ]
    assert counts == [("cat", ["3", "1"]), ("dog", ["3", "1"])]
