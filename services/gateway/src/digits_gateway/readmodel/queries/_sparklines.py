"""Home-page sparklines: each model's train loss, averaged into a few evenly spaced buckets."""

from __future__ import annotations

from collections.abc import Iterable

from digits_gateway.readmodel.queries._records import Cursor

SPARK_POINTS = 24


def loss_sparklines(
    cur: Cursor, job_ids: Iterable[str], points: int = SPARK_POINTS
) -> dict[str, list[float]]:
    """job id → up to `points` mean train losses in training order (jobs without any: absent)."""
    ids = list(job_ids)
    if not ids:
        return {}
    marks = ",".join("?" * len(ids))
    rows = cur.execute(
        f"""select job_id, bucket, avg(value) from (
              select job_id, value,
                     ntile(?) over (partition by job_id order by epoch, iteration) as bucket
              from metrics
              where job_id in ({marks}) and phase = 'train' and name = 'loss' and isfinite(value))
            group by job_id, bucket order by job_id, bucket""",
        [points, *ids],
    ).fetchall()
    out: dict[str, list[float]] = {}
    for job_id, _bucket, value in rows:
        out.setdefault(job_id, []).append(round(float(value), 6))
    return out
