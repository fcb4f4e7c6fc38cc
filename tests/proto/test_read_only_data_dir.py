"""A service on a read-only data directory stops at once with one clear line, not a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from digits_proto.runtime import check_writable
from tests.mounts import fill, tmpfs

pytestmark = pytest.mark.timeout(120)

# The services on proto's ServiceHost, and the gateway (its own start calls the same check).
SERVICES = [
    "digits_datasets",
    "digits_trainer",
    "digits_inference",
    "digits_gpu_broker",
    "digits_gateway",
]


@pytest.mark.parametrize("module", SERVICES)
@pytest.mark.parametrize("missing", [False, True], ids=["existing", "to-create"])
def test_a_service_on_a_read_only_data_dir_exits_with_one_clear_line(
    module: str, missing: bool, tmp_path: Path
) -> None:
    """`python -m <service>` with DIGITS_DATA_DIR on a read-only tmpfs (the folder itself, or
    one it must create there) exits non-zero, its stderr one line naming the folder."""
    with tmpfs(tmp_path / "ro", size="1m", read_only=True) as mounted:
        data = mounted / "data" if missing else mounted
        env = {
            **os.environ,
            # Nothing listens there: the check must come before any connection attempt.
            "DIGITS_NATS_URL": "nats://127.0.0.1:1",
            "DIGITS_DATA_DIR": str(data),
            "DIGITS_DATA_ROOTS": str(tmp_path),
        }
        done = subprocess.run(
            [sys.executable, "-m", module],
            env=env,
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode != 0, done.stderr
    assert "Traceback" not in done.stderr
    assert lines == [f"data directory {data} is not writable: Read-only file system"], lines


def test_check_writable_creates_a_missing_folder_and_leaves_nothing(tmp_path: Path) -> None:
    """A missing data directory is created; the probe file is gone afterwards."""
    folder = tmp_path / "a" / "b"
    check_writable(folder)
    assert folder.is_dir() and list(folder.iterdir()) == []


def test_check_writable_refuses_a_full_data_dir(tmp_path: Path) -> None:
    """A full file system fails the check too (the probe writes and syncs bytes)."""
    with tmpfs(tmp_path / "full", size="1m") as mounted:
        fill(mounted)
        with pytest.raises(SystemExit) as raised:
            check_writable(mounted)
    assert str(raised.value) == f"data directory {mounted} is not writable: No space left on device"
