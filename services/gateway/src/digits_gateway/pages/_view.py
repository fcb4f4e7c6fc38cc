"""Pure view models: turn DIGITS job JSON dicts into the plain values the templates print."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

RUNNING_STATUSES = ("Initialized", "Waiting", "Running")
STATUS_ICONS = {
    "Initialized": "○",
    "Waiting": "◔",
    "Running": "▶",
    "Done": "✓",
    "Aborted": "■",
    "Error": "✕",
}
RESIZE_MODES = {
    "squash": "Squash",
    "crop": "Crop",
    "fill": "Fill",
    "half_crop": "Half crop, half fill",
}


def status_view(status: Any) -> dict[str, Any]:
    """Text, icon and CSS modifier for a status string (unknown ones render as plain text)."""
    text = str(status) if status else "Unknown"
    return {
        "text": text,
        "icon": STATUS_ICONS.get(text, "?"),
        "css": text.lower() if text in STATUS_ICONS else "unknown",
        "running": text in RUNNING_STATUSES,
    }


def fmt_time(value: Any) -> dict[str, str] | None:
    """A timestamp (epoch seconds/ms or ISO text) as {iso, text}; other text is shown as is."""
    if value is None or value == "":
        return None
    moment: datetime | None = None
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        seconds = value / 1000 if value > 1e11 else value  # 1e11 s is year 5138: must be ms
        try:
            moment = datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return {"iso": "", "text": str(value)}
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return {"iso": "", "text": value}
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
    if moment is None:
        return {"iso": "", "text": str(value)}
    moment = moment.astimezone(UTC)
    return {"iso": moment.isoformat(), "text": moment.strftime("%Y-%m-%d %H:%M:%S UTC")}


def fmt_duration(seconds: Any) -> str:
    """Seconds as a short human duration ("3 min 20 s"); text passes through; bad input → ""."""
    if isinstance(seconds, str):
        return seconds
    if not isinstance(seconds, int | float) or not math.isfinite(seconds) or seconds < 0:
        return ""
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


def fmt_epoch(value: Any) -> str:
    """An epoch number the way DIGITS names snapshots (1, 2.5)."""
    try:
        return f"{float(value):g}"
    except (TypeError, ValueError):
        return str(value)


def progress_pct(value: Any) -> int | None:
    """Progress 0..1 (or an already-percent value) as an int percentage, None when unknown."""
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        return None
    pct = value * 100 if value <= 1 else value
    return max(0, min(100, round(pct)))


def history_view(items: Any, notes: Any = None) -> list[dict[str, Any]]:
    """status_history as [{status, time, note}], from [status, ts] pairs or {status, timestamp}
    dicts; `notes` (status_notes) is aligned with them."""
    rows: list[dict[str, Any]] = []
    notes = notes if isinstance(notes, list) else []
    for n, item in enumerate(items if isinstance(items, list) else []):
        if isinstance(item, list | tuple) and item:
            status, when = item[0], item[1] if len(item) > 1 else None
        elif isinstance(item, dict):
            status = item.get("status")
            when = next(
                (item[k] for k in ("timestamp", "time", "at", "occurred_at", "ts") if k in item),
                None,
            )
        else:
            continue
        note = str(notes[n]) if n < len(notes) and notes[n] else ""
        rows.append({"status": status_view(status), "time": fmt_time(when), "note": note})
    return rows


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _stored(size: int | None, shards: int | None) -> str:
    """A split's RecordIO size, e.g. "1.2 MB" or "1.5 GB in 3 shards"; "" when not built."""
    if not size:
        return ""
    text = f"{size} B"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            text = f"{size / scale:.1f} {unit}"
            break
    return f"{text} in {shards} shards" if shards and shards > 1 else text


def _pct(part: int | None, whole: int) -> str:
    return f"{100 * part / whole:.0f} %" if part is not None and whole else ""


def errors_view(job: dict[str, Any]) -> list[str]:
    """Every error of a job as text: `error` plus `errors` (strings or {path, reason, split})."""
    out: list[str] = []
    if job.get("error"):
        out.append(str(job["error"]))
    for err in _list(job.get("errors")):
        if isinstance(err, dict):
            where = str(err.get("path") or "")
            if err.get("split"):
                where = f"{where} ({err['split']})" if where else str(err["split"])
            reason = err.get("reason") or err.get("message") or ""
            out.append(f"{where}: {reason}" if where else str(reason))
        elif err:
            out.append(str(err))
    return out


def common_view(job: dict[str, Any]) -> dict[str, Any]:
    """Fields every job page shows: id, name, status, history, progress, ETA."""
    status = status_view(job.get("status"))
    pct = progress_pct(job.get("progress"))
    eta = job.get("eta", job.get("eta_seconds"))
    return {
        "id": str(job.get("id", "")),
        "name": str(job.get("name") or job.get("id") or "Unnamed job"),
        "status": status,
        "history": history_view(job.get("status_history"), job.get("status_notes")),
        "progress": 100 if status["text"] == "Done" else pct,
        "eta": fmt_duration(eta) if status["running"] else "",
        "username": str(job.get("username") or ""),
        "directory": str(job.get("directory") or ""),
        "errors": errors_view(job),
        "detail": str(job.get("detail") or ""),
        "notes": str(job.get("notes") or ""),
    }


def dataset_view(job: dict[str, Any]) -> dict[str, Any]:
    """View model of a dataset job (DIGITS `/datasets/<id>.json`)."""
    view = common_view(job)
    dbs = [_dict(t) for t in _list(job.get("CreateDbTasks"))]
    first = dbs[0] if dbs else {}
    channels = _count(first.get("image_channels"))
    mode = job.get("resize_mode") or first.get("resize_mode") or ""
    view["image"] = {
        "width": first.get("image_width"),
        "height": first.get("image_height"),
        "channels": channels,
        "color": {1: "Grayscale", 3: "Color"}.get(channels or 0, ""),
        "resize_mode": RESIZE_MODES.get(str(mode), str(mode)),
        "backend": first.get("backend") or "",
        "encoding": first.get("encoding") or "",
        "compression": first.get("compression") or "",
    }
    view["splits"] = []
    for task in (_dict(t) for t in _list(job.get("ParseFolderTasks"))):
        train, val, test = (_count(task.get(k)) for k in ("train_count", "val_count", "test_count"))
        whole = sum(n for n in (train, val, test) if n)
        view["splits"].append(
            {
                "name": task.get("name") or "Parse folder",
                "folder": task.get("folder") or "",
                "label_count": _count(task.get("label_count")),
                "train": train,
                "val": val,
                "test": test,
                "val_pct": _pct(val, whole),
                "test_pct": _pct(test, whole),
            }
        )
    view["dbs"] = [
        {
            "name": db.get("name") or "DB",
            "entries": _count(db.get("entries")),
            "failed": _count(db.get("error_count") or db.get("failed")),
            "split": str(db.get("split") or ""),
            "stored": _stored(_count(db.get("rec_bytes")), _count(db.get("shard_count"))),
        }
        for db in dbs
    ]
    mean = job.get("mean_image")
    view["mean_image"] = mean if isinstance(mean, str) and mean.startswith("/") else ""
    view["warnings"] = [str(w) for w in _list(job.get("warnings")) if w]
    labels = [str(x) for x in _list(job.get("labels"))]
    train = _split_db(dbs, "train") or first
    view["labels"] = _class_counts(labels, train, "")
    # DIGITS showed the validation distribution beside the training one.
    val = _class_counts(labels, _split_db(dbs, "val"), "val_")
    view["has_val_counts"] = any(c["val_count"] is not None for c in val)
    for row, val_row in zip(view["labels"], val, strict=True):
        row.update(val_row)
    return view


def _split_db(dbs: list[dict[str, Any]], split: str) -> dict[str, Any]:
    """The Create DB task of a split: by its `split`, else by its name ("val", "Create DB (val)")."""
    for db in dbs:
        name = str(db.get("name") or "")
        if db.get("split") == split or name == split or name.endswith(f"({split})"):
            return db
    return {}


def _class_counts(labels: list[str], db: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    """Per class: images in the split, images that failed to load, bar width (% of the largest)."""
    counts = _list(db.get("class_counts"))
    failed = _list(db.get("class_error_counts"))
    rows = [
        {
            "name": name,
            f"{prefix}count": _count(counts[i]) if i < len(counts) else None,
            f"{prefix}failed": _count(failed[i]) if i < len(failed) else None,
        }
        for i, name in enumerate(labels)
    ]
    top = max((r[f"{prefix}count"] or 0 for r in rows), default=0)
    for r in rows:
        r[f"{prefix}bar"] = round(100 * (r[f"{prefix}count"] or 0) / top) if top else 0
    return rows


def model_view(job: dict[str, Any]) -> dict[str, Any]:
    """View model of a model job (DIGITS `/models/<id>.json`)."""
    view = common_view(job)
    dims = [d for d in _list(job.get("image dimensions")) if _count(d) is not None]
    epochs: list[float] = []
    for snap in _list(job.get("snapshots")):
        try:
            epochs.append(float(snap[0] if isinstance(snap, list | tuple) else snap))
        except (TypeError, ValueError, IndexError):
            continue
    view.update(
        {
            "dataset_id": str(job.get("dataset_id") or ""),
            "dataset_name": str(job.get("dataset_name") or job.get("dataset_id") or ""),
            "created": fmt_time(job.get("creation time") or job.get("submitted")),
            "framework": str(job.get("framework") or ""),
            "network": str(job.get("network") or job.get("standard_networks") or ""),
            "dims": f"{dims[1]}×{dims[0]}, {dims[2]} channel{'s' if dims[2] != 1 else ''}"
            if len(dims) == 3
            else "",
            "snapshots": [fmt_epoch(e) for e in sorted(set(epochs), reverse=True)],
            "train_epochs": _count(job.get("train_epochs")),
            "resize_mode": RESIZE_MODES.get(
                str(job.get("image resize mode")), str(job.get("image resize mode") or "")
            ),
            "use_mean": str(job.get("mean subtraction") or ""),
        }
    )
    return view


def predictions_view(predictions: Any) -> list[dict[str, Any]]:
    """classify_one predictions [[label, percent], …] as rows with a clamped bar width."""
    rows = []
    for pred in _list(predictions)[:5]:
        if not isinstance(pred, list | tuple) or len(pred) < 2:
            continue
        try:
            pct = max(0.0, min(100.0, float(pred[1])))
        except (TypeError, ValueError):
            continue
        # DIGITS's "97.12%", no space: its scripts split each item on whitespace, [1] the label.
        rows.append({"label": str(pred[0]), "pct": pct, "text": f"{pct:.2f}%"})
    return rows
