"""What the sandbox shows its child: folders under /tmp stay visible beside the child's own /tmp."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from digits_trainer.confine import Confiner, Limits

BWRAP = shutil.which("bwrap") or "/usr/bin/bwrap"

pytestmark = pytest.mark.skipif(not os.access(BWRAP, os.X_OK), reason="bubblewrap is missing")


def test_a_readable_folder_under_tmp_is_not_hidden_by_the_childs_tmpfs(tmp_path: Path) -> None:
    """A checkout or venv under /tmp (a CI clone) is bound read-only after /tmp's tmpfs, so
    the child reads it; mounted the other way round the tmpfs hid it (exit 127)."""
    assert str(tmp_path).startswith("/tmp/")
    library = tmp_path / "checkout"
    library.mkdir()
    (library / "module.txt").write_text("visible\n")
    os.chmod(tmp_path, 0o755)  # the child drops to nobody: let it reach the file, as a venv is
    library.chmod(0o755)
    (library / "module.txt").chmod(0o644)
    confiner = Confiner("bwrap", BWRAP, tmp_path / "data")
    confiner._readable = [library]  # what readable_tree() finds for a venv and sources
    job = tmp_path / "data" / "job"
    job.mkdir(parents=True)
    confiner.prepare(job)
    argv = confiner.argv(["/bin/cat", str(library / "module.txt")], job, {}, Limits())
    done = subprocess.run(argv, capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == b"visible\n"
    # ...and the child's /tmp is its own, empty but for what the binds made.
    listing = subprocess.run(
        confiner.argv(["/bin/ls", "-A", "/tmp"], job, {}, Limits()),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert listing.stdout.split() == [tmp_path.parts[2].encode()]
