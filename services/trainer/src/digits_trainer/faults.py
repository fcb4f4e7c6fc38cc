"""What a failed write on this node (a full disk, a read-only folder) tells a job's owner."""

from __future__ import annotations

from pathlib import Path


def write_failure(error: OSError, node: str, where: Path | str) -> str:
    """`<reason> writing <path> on node <node>`: the file the error names, else `where` (the
    folder being written); an operator reads which disk of which machine to look at."""
    reason = error.strerror or str(error) or type(error).__name__
    path = error.filename if error.filename is not None else where
    return f"{reason} writing {path} on node {node}"
