"""Process logs rotated by size: a real child writing through the launcher's pipe."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from digits_cli.logfiles import RotatingLog, follow


def test_a_log_rotates_at_its_size_keeping_the_newest_backups(tmp_path: Path) -> None:
    """Given 1 kB files and 2 backups, when 10 kB are written in 100-byte lines, then the log
    and its two backups hold the newest lines, each file within its bound, nothing older kept."""
    path = tmp_path / "svc.log"
    log = RotatingLog(path, max_bytes=1000, backups=2)
    lines = [f"{n:05d} ".encode() + b"x" * 93 + b"\n" for n in range(100)]
    for line in lines:
        log.write(line)
    log.close()
    files = sorted(tmp_path.iterdir())
    assert [f.name for f in files] == ["svc.log", "svc.log.1", "svc.log.2"]
    assert all(f.stat().st_size <= 1000 for f in files)
    kept = b"".join(
        p.read_bytes() for p in (path.with_name("svc.log.2"), path.with_name("svc.log.1"), path)
    )
    assert kept == b"".join(lines[-len(kept) // 100 :])  # the newest, in order
    assert lines[-1] in path.read_bytes()


def test_a_child_writing_through_the_pipe_is_bounded(tmp_path: Path) -> None:
    """A real child printing 2 MB to stdout and stderr leaves at most (1 + backups) × 256 kB."""
    path = tmp_path / "child.log"
    log = RotatingLog(path, max_bytes=256 * 1024, backups=3)
    code = (
        "import sys\n"
        "for i in range(20000):\n"
        "    (sys.stdout if i % 2 else sys.stderr).write(f'{i:08d} ' + 'y' * 91 + '\\n')\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    assert proc.stdout is not None
    pump = follow(proc.stdout, log, "child")
    assert proc.wait(timeout=60) == 0
    pump.join(timeout=30)
    assert not pump.is_alive()
    log.close()
    sizes = [f.stat().st_size for f in tmp_path.iterdir()]
    assert len(sizes) == 4 and sum(sizes) <= 4 * 256 * 1024
    assert b"00019999 " in path.read_bytes()  # the last line made it


def test_zero_size_means_one_growing_file(tmp_path: Path) -> None:
    """max_bytes 0: never rotated (a plain path given to nats.start behaves as before)."""
    log = RotatingLog(tmp_path / "plain.log", max_bytes=0, backups=0)
    for _ in range(100):
        log.write(b"z" * 1000)
    log.close()
    assert [f.name for f in tmp_path.iterdir()] == ["plain.log"]
    assert (tmp_path / "plain.log").stat().st_size == 100_000
