"""The DuckDB file of the read model: open it, create the tables, rebuild on a schema change."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import duckdb
import structlog

log = structlog.get_logger(__name__)

# DuckDB's buffer pool cap (DIGITS_GATEWAY_DUCKDB_MEMORY): a DuckDB size such as "512MB".
DEFAULT_MEMORY_LIMIT = "1GB"

# Bump when a table changes: the file is then deleted and rebuilt from the streams.
SCHEMA_VERSION = "8"

DDL = """
create table if not exists meta(key varchar primary key, value varchar);
create table if not exists tracking(
  consumer varchar, stream varchar, last_seq bigint, primary key(consumer, stream));
create table if not exists jobs(
  id varchar primary key, type varchar, name varchar, status varchar, username varchar,
  grp varchar, created timestamptz, updated timestamptz, dataset_id varchar, spec varchar,
  form varchar, progress double, eta_seconds double, epoch double, error varchar,
  detail varchar, deleted boolean default false, stream varchar, status_seq bigint,
  progress_seq bigint, deleted_seq bigint, devices varchar, attempt integer, notes varchar,
  idem_key varchar, idem_digest varchar, tags varchar);
create table if not exists status_history(
  job_id varchar, seq bigint, status varchar, occurred timestamptz, note varchar,
  primary key(job_id, seq));
create table if not exists dataset_details(
  dataset_id varchar primary key, folder varchar, labels varchar, split_counts varchar,
  warnings varchar, splits varchar, image_width integer, image_height integer,
  image_channels integer, encoding varchar, mean varchar, mean_jpg varchar,
  labels_blob varchar, errors varchar, phase varchar);
create table if not exists snapshots(
  job_id varchar, epoch double, seq bigint, symbol varchar, params varchar, state varchar,
  input_shape varchar, primary key(job_id, epoch));
create table if not exists metrics(
  job_id varchar, phase varchar, iteration bigint, name varchar, epoch double, value double,
  seq bigint, occurred double, primary key(job_id, phase, iteration, name));
create table if not exists devices(
  node_id varchar, device_id varchar, kind varchar, idx integer, name varchar,
  memory_total bigint, info varchar, primary key(node_id, device_id));
create table if not exists leases(
  lease_id varchar primary key, node_id varchar, job_id varchar, device_ids varchar,
  granted_at timestamptz, ended_at timestamptz, state varchar);
create table if not exists queue(
  job_id varchar primary key, position integer, priority integer, username varchar,
  count integer, device_indexes varchar, node_id varchar, reason varchar, since bigint);
create table if not exists users(
  username varchar primary key, role varchar, disabled boolean, epoch integer,
  created timestamptz, created_by varchar, seq bigint);
create table if not exists ended_sessions(
  session_id varchar primary key, username varchar, ended timestamptz);
create table if not exists tokens(
  token_id varchar primary key, username varchar, name varchar, token_hash varchar,
  created timestamptz, revoked boolean);
create table if not exists audit(
  stream varchar, seq bigint, occurred timestamptz, actor varchar, type varchar,
  aggregate varchar, owner varchar, primary key(stream, seq));
create table if not exists early_progress(
  job_id varchar primary key, seq bigint, progress double, eta_seconds double, epoch double);
create table if not exists failures(
  stream varchar, seq bigint, error varchar, occurred timestamptz, primary key(stream, seq));
create table if not exists telemetry_history(
  job_id varchar, node_id varchar, device_id varchar, t double, utilization double,
  memory_used bigint, memory_total bigint, host_cpu double, host_memory_used bigint,
  host_memory_total bigint);
"""

# Tables that no stream can rebuild (device telemetry is never stored on the bus): a schema
# change carries them over into the new file instead of losing them.
KEPT_TABLES = ("telemetry_history",)


class ReadModel:
    """The one read-write connection to the DuckDB file; every user takes a cursor."""

    def __init__(self, path: Path, memory_limit: str = DEFAULT_MEMORY_LIMIT):
        self.path = path
        self.memory_limit = memory_limit
        self.fresh = False
        self.con = self._open()

    def _connect(self) -> duckdb.DuckDBPyConnection:
        # DuckDB's own default is 80 % of RAM: its buffer pool would keep every block it ever
        # read. With a limit it evicts (and spills to `<file>.tmp`) instead.
        return duckdb.connect(str(self.path), config={"memory_limit": self.memory_limit})

    def _open(self) -> duckdb.DuckDBPyConnection:
        """Open the file and create the tables. Every result here is read whole (`fetchall`):
        a result left half-read keeps this connection's transaction open for the process's
        life, and DuckDB then frees no committed transaction's undo buffers — ~256 KB held
        for every projection commit (the gateway grew ~40 MB per 40-epoch job)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        con = self._connect()
        con.execute("create table if not exists meta(key varchar primary key, value varchar)")
        rows = con.execute("select value from meta where key = 'schema'").fetchall()
        kept: list[tuple[str, Path]] = []
        if rows and rows[0][0] != SCHEMA_VERSION:
            log.warning("readmodel_schema_changed", found=rows[0][0], wanted=SCHEMA_VERSION)
            kept = self._save_kept(con)
            con.close()
            self.path.unlink()
            Path(f"{self.path}.wal").unlink(missing_ok=True)
            con = self._connect()
        con.execute(DDL)
        self._restore_kept(con, kept)
        con.execute(
            "insert into meta values ('schema', ?) on conflict do update set value = excluded.value",
            [SCHEMA_VERSION],
        )
        self.fresh = con.execute("select count(*) from tracking").fetchall() == [(0,)]
        return con

    def _save_kept(self, con: duckdb.DuckDBPyConnection) -> list[tuple[str, Path]]:
        """Copy KEPT_TABLES out to Parquet files beside the database (best effort)."""
        saved = []
        for table in KEPT_TABLES:
            target = self.path.with_name(f"{self.path.name}.{table}.parquet")
            try:
                quoted = str(target).replace("'", "''")
                con.execute(f"copy {table} to '{quoted}' (format parquet)")
                saved.append((table, target))
            except duckdb.Error:  # absent in the old schema: nothing to keep
                target.unlink(missing_ok=True)
        return saved

    def _restore_kept(self, con: duckdb.DuckDBPyConnection, kept: list[tuple[str, Path]]) -> None:
        """Load what _save_kept copied out (by column name: a column added since is null)."""
        for table, source in kept:
            try:
                quoted = str(source).replace("'", "''")
                con.execute(f"insert into {table} by name select * from read_parquet('{quoted}')")
            except duckdb.Error:
                log.exception("readmodel_kept_table_lost", table=table)
            source.unlink(missing_ok=True)

    @contextlib.contextmanager
    def cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor (its own connection to the same database), closed afterwards."""
        cur = self.con.cursor()
        try:
            yield cur
        finally:
            cur.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor inside one transaction: committed on success, rolled back on error."""
        with self.cursor() as cur:
            cur.execute("begin")
            try:
                yield cur
            except BaseException:
                cur.execute("rollback")
                raise
            cur.execute("commit")

    def tracking(self, consumer_of: dict[str, str]) -> dict[str, int]:
        """The last applied sequence per stream (0 when none), for the given consumers."""
        with self.cursor() as cur:
            rows = cur.execute("select consumer, stream, last_seq from tracking").fetchall()
        found = {(c, s): int(q) for c, s, q in rows}
        return {s: found.get((c, s), 0) for s, c in consumer_of.items()}

    def close(self) -> None:
        """Checkpoint and close the file."""
        with contextlib.suppress(duckdb.Error):
            self.con.execute("checkpoint")
        self.con.close()
