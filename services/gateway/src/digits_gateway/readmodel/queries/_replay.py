"""SSE replay: what a client holding a cursor of stream positions has not seen yet."""

from __future__ import annotations

from digits_gateway.readmodel.live import LiveEvent
from digits_gateway.readmodel.queries._jobs import metrics
from digits_gateway.readmodel.queries._records import Cursor
from digits_proto import subjects


def changes_since(cur: Cursor, job_id: str | None, cursor: dict[str, int]) -> list[LiveEvent]:
    """Status, progress, snapshot and deleted changes after the cursor's positions.

    Progress is kept as the latest value only: a resumed client gets one progress event.
    """
    job_filter = "" if job_id is None else " and j.id = ?"
    job_param = [] if job_id is None else [job_id]
    out: list[LiveEvent] = []
    for stream in (subjects.STREAM_DATASETS, subjects.STREAM_MODELS):
        if stream not in cursor:
            continue
        after = [stream, cursor[stream]]
        for jid, type, name, status, seq, note in cur.execute(
            f"""select j.id, j.type, j.name, h.status, h.seq, h.note from status_history h
                join jobs j on j.id = h.job_id where j.stream = ? and h.seq > ?{job_filter}""",
            after + job_param,
        ).fetchall():
            data = {"job_id": jid, "type": type, "name": name, "status": status}
            if note:
                data["note"] = note
            out.append(LiveEvent(stream=stream, seq=seq, job_id=jid, kind="status", data=data))
        for jid, epoch, seq in cur.execute(
            f"""select s.job_id, s.epoch, s.seq from snapshots s join jobs j on j.id = s.job_id
                where j.stream = ? and s.seq > ?{job_filter}""",
            after + job_param,
        ).fetchall():
            data = {"job_id": jid, "epoch": epoch}
            out.append(LiveEvent(stream=stream, seq=seq, job_id=jid, kind="snapshot", data=data))
        for jid, type, name, seq in cur.execute(
            f"""select j.id, j.type, j.name, j.deleted_seq from jobs j
                where j.stream = ? and j.deleted and j.deleted_seq > ?{job_filter}""",
            after + job_param,
        ).fetchall():
            data = {"job_id": jid, "type": type, "name": name}
            out.append(LiveEvent(stream=stream, seq=seq, job_id=jid, kind="deleted", data=data))
    if subjects.STREAM_PROGRESS in cursor:  # progress has its own stream (and positions)
        out += _progress_since(cur, job_filter, job_param, cursor[subjects.STREAM_PROGRESS])
    out.sort(key=lambda e: (e.stream, e.seq))
    return out


def _progress_since(
    cur: Cursor, job_filter: str, job_param: list[str], after: int
) -> list[LiveEvent]:
    out: list[LiveEvent] = []
    for jid, progress, eta, epoch, seq, type in cur.execute(
        f"""select j.id, j.progress, j.eta_seconds, j.epoch, j.progress_seq, j.type from jobs j
            where j.progress_seq > ? and not j.deleted{job_filter}""",
        [after, *job_param],
    ).fetchall():
        data = {"job_id": jid, "progress": progress, "eta_seconds": eta}
        if type == "model" and epoch is not None:
            data["epoch"] = epoch
        stream = subjects.STREAM_PROGRESS
        out.append(LiveEvent(stream=stream, seq=seq, job_id=jid, kind="progress", data=data))
    return out


def metric_events_since(cur: Cursor, job_id: str, after_seq: int) -> list[LiveEvent]:
    """A model's metric events after a position of the metrics stream."""
    return [
        LiveEvent(
            stream=subjects.STREAM_METRICS,
            seq=p.seq,
            job_id=job_id,
            kind="metric",
            data={
                "job_id": job_id,
                "epoch": p.epoch,
                "iteration": p.iteration,
                "phase": p.phase,
                "values": p.values,
                "occurred": p.occurred,
            },
        )
        for p in metrics(cur, job_id, after_seq)
    ]
