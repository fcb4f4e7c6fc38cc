"""digits_proto.children: a child whose parent is already gone when it arms the parent-death
signal ends at once (no signal would ever come); armed in time, it lives on."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

ARM = "import sys; from digits_proto.children import die_with_parent; "
ARM += "die_with_parent(int(sys.argv[1])); print('alive')"


def test_a_child_whose_parent_is_gone_kills_itself() -> None:
    """Armed for a parent that is not its parent any more (it was reparented): killed."""
    gone = subprocess.run(
        [sys.executable, "-c", ARM, "1"], capture_output=True, timeout=30, check=False
    )
    assert gone.returncode == -signal.SIGKILL and b"alive" not in gone.stdout


def test_a_child_whose_parent_lives_goes_on() -> None:
    """Armed for its real parent (this test process): it runs to its end."""
    kept = subprocess.run(
        [sys.executable, "-c", ARM, str(os.getpid())], capture_output=True, timeout=30, check=False
    )
    assert kept.returncode == 0 and kept.stdout.strip() == b"alive"
