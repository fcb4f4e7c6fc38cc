"""The read model's memory stays bounded: committed transactions are freed, DuckDB is capped."""

from __future__ import annotations

from pathlib import Path

import duckdb

from digits_gateway.readmodel.db import ReadModel

COMMITS = 200


def transaction_memory(db: ReadModel) -> int:
    """Bytes DuckDB holds for transactions (undo buffers of commits not yet cleaned up)."""
    with db.cursor() as cur:
        rows = cur.execute(
            "select memory_usage_bytes from duckdb_memory() where tag = 'TRANSACTION'"
        ).fetchall()
    return int(rows[0][0]) if rows else 0


def test_committed_transactions_are_freed(tmp_path: Path) -> None:
    """Each projection commit's undo buffer (~256 KB) is freed once no reader needs it.

    The gateway's own connection once kept a half-read result from opening the file, so its
    transaction never ended and DuckDB freed no commit after it: 200 commits held ~50 MB
    (the gateway grew ~1 MB per epoch trained, for good).
    """
    db = ReadModel(tmp_path / "rm.duckdb")
    try:
        with db.transaction() as tx:
            tx.execute("insert into jobs(id, type, status) values ('job-1', 'model', 'Running')")
        for i in range(COMMITS):
            with db.transaction() as tx:
                tx.execute(
                    "update jobs set progress = ?, epoch = ? where id = 'job-1'", [i / COMMITS, i]
                )
            with db.cursor() as cur:  # a reader as the routes read: one row of several
                cur.execute("select id, progress from jobs").fetchone()
        held = transaction_memory(db)
        assert held < 5 * 1024 * 1024, f"{held / 2**20:.1f} MB held after {COMMITS} commits"
    finally:
        db.close()


def test_reopened_file_frees_commits_too(tmp_path: Path) -> None:
    """The same on a second start (schema found, tables already there)."""
    ReadModel(tmp_path / "rm.duckdb").close()
    db = ReadModel(tmp_path / "rm.duckdb")
    try:
        assert db.fresh
        for i in range(COMMITS):
            with db.transaction() as tx:
                tx.execute("insert or replace into meta values ('probe', ?)", [str(i)])
        assert transaction_memory(db) < 5 * 1024 * 1024
    finally:
        db.close()


def test_memory_limit_is_applied(tmp_path: Path) -> None:
    """DuckDB's buffer pool is capped by the setting, not DuckDB's 80 % of RAM."""

    def limit(con: duckdb.DuckDBPyConnection) -> str:
        return con.execute("select current_setting('memory_limit')").fetchall()[0][0]

    expected = limit(duckdb.connect(config={"memory_limit": "300MB"}))
    db = ReadModel(tmp_path / "rm.duckdb", memory_limit="300MB")
    try:
        with db.cursor() as cur:
            assert limit(cur) == expected
        assert limit(duckdb.connect()) != expected  # DuckDB's own default differs
    finally:
        db.close()
    default = ReadModel(tmp_path / "other.duckdb")
    try:
        with default.cursor() as cur:
            assert limit(cur) == limit(duckdb.connect(config={"memory_limit": "1GB"}))
    finally:
        default.close()
