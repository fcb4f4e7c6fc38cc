"""Files at rest and the sealed bus on a real system: after a build and a training run, nothing
under the data directory is readable by another user, and no service was refused on the bus."""

from __future__ import annotations

import re
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import System, start_system, wait_until, write_intensity_classes
from tests.e2e.flows import build_dataset, train_model

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    """A system of its own: its first admin signs in with the link the launcher printed."""
    with start_system(tmp_path_factory.mktemp("at-rest"), admin_password=None) as s:
        yield s


def _sign_in_with_the_printed_link(client: httpx.Client, system: System) -> None:
    # The gateway answers /health a moment before the launcher has seen every service ready.
    wait_until(lambda: "DIGITS is ready" in system.log.read_text(), 60, 0.2, "the ready line")
    found = re.search(r"/login\?token=(\S+)", system.log.read_text())
    assert found, system.log.read_text()
    assert client.get(f"/login?token={found.group(1)}").status_code in (200, 302)
    client.get("/")  # the CSRF cookie, sent back as a header on state changes (as the UI does)

    def csrf(request: httpx.Request) -> None:
        token = client.cookies.get("csrftoken")
        if token and request.method not in ("GET", "HEAD", "OPTIONS"):
            request.headers["x-csrftoken"] = token

    client.event_hooks["request"].append(csrf)


SANDBOX_GROUP = 65534  # the trainer shares a job's inputs with its sandboxed child (as root)


def _shared(data_dir: Path) -> list[str]:
    """Paths under `data_dir` that another user could use: any "other" bit, or group bits for a
    group other than the sandbox's (the data dir's 0700 keeps even that group out)."""
    found = []
    for p in [data_dir, *data_dir.rglob("*")]:
        st = p.lstat()
        mode = stat.S_IMODE(st.st_mode)
        if not p.is_symlink() and (mode & 0o007 or (mode & 0o070 and st.st_gid != SANDBOX_GROUP)):
            found.append(f"{oct(mode)} gid {st.st_gid} {p}")
    return found


def test_after_a_build_and_a_training_run_the_data_dir_is_the_owners_only(system: System) -> None:
    folder = system.root / "intensity"
    write_intensity_classes(folder, per_class=20)
    with httpx.Client(base_url=system.url, timeout=30) as client:
        _sign_in_with_the_printed_link(client, system)
        dataset_id = build_dataset(
            client,
            method="folder",
            folder_train=str(folder),
            folder_pct_val="20",
            resize_width="28",
            resize_height="28",
            resize_channels="1",
            dataset_name="at-rest",
        )
        train_model(
            client,
            dataset=dataset_id,
            standard_networks="lenet",
            train_epochs="1",
            model_name="at-rest",
        )
    assert stat.S_IMODE(system.data_dir.stat().st_mode) == 0o700
    assert _shared(system.data_dir) == []
    # Every service did all of that under its own NATS user: nothing was refused.
    nats_log = (system.data_dir / "logs" / "nats-server.log").read_text()
    assert "Violation" not in nats_log, [ln for ln in nats_log.splitlines() if "Violation" in ln]
