"""Read several models at once for the comparison page: the jobs and all their metric points."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from digits_gateway.readmodel.queries import Cursor, Job
from digits_gateway.readmodel.queries._jobs import JOB_COLUMNS, _job


def models_by_id(cur: Cursor, ids: Iterable[str]) -> dict[str, Job]:
    """The live (not deleted) models among `ids`, by id; datasets and unknown ids are left out."""
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return {}
    marks = ",".join("?" * len(wanted))
    rows = cur.execute(
        f"select {JOB_COLUMNS} from jobs where id in ({marks}) and type = 'model' and not deleted",
        wanted,
    ).fetchall()
    return {job.id: job for job in map(_job, rows)}


def models_in_group(cur: Cursor, group: str) -> list[Job]:
    """The live models of one job group (a sweep's jobs), oldest first."""
    rows = cur.execute(
        f"""select {JOB_COLUMNS} from jobs
            where grp = ? and type = 'model' and not deleted order by created, id""",
        [group],
    ).fetchall()
    return [_job(r) for r in rows]


def metric_columns(cur: Cursor, ids: Iterable[str]) -> dict[str, dict[str, dict[str, Any]]]:
    """job id → phase → {epoch, iteration, time, values: {name: [...]}} columns, by iteration.

    `time` is when each point was measured (epoch seconds), for charts by wall time.

    Columns (one entry per recorded point, None where a point lacks a value) keep the JSON
    small and are what the charts draw; one query for every run.
    """
    wanted = list(dict.fromkeys(ids))
    out: dict[str, dict[str, dict[str, Any]]] = {i: {} for i in wanted}
    if not wanted:
        return out
    marks = ",".join("?" * len(wanted))
    rows = cur.execute(
        f"""select job_id, phase, iteration, any_value(epoch), max(occurred), list(name),
                   list(value)
            from metrics where job_id in ({marks})
            group by job_id, phase, iteration order by job_id, phase, iteration""",
        wanted,
    ).fetchall()
    for job_id, phase, iteration, epoch, occurred, names, values in rows:
        series = out[job_id].setdefault(
            phase, {"epoch": [], "iteration": [], "time": [], "values": {}}
        )
        n = len(series["epoch"])
        series["epoch"].append(epoch)
        series["iteration"].append(iteration)
        series["time"].append(occurred)
        for name, value in zip(names, values, strict=True):
            column = series["values"].setdefault(name, [None] * n)
            column.append(value)
        for column in series["values"].values():
            if len(column) == n:  # this point has no such value
                column.append(None)
    return out
