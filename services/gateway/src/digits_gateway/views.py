"""DIGITS's JSON shapes (dataset, model, status, home tables) built from read-model records."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from digits_gateway.forms import kept_form
from digits_gateway.readmodel import queries
from digits_gateway.readmodel.queries import Cursor, DatasetDetails, Job
from digits_proto import subjects, utcnow

VERSION = "6.1.1+mxnet"  # DIGITS's API version this gateway speaks, plus the framework
JOB_TYPES = {
    "dataset": "Image Classification Dataset",
    "model": "Image Classification Model",
    "pretrained_model": "Pretrained Model",
}
STATUS_CSS = {
    "Initialized": "warning",
    "Waiting": "warning",
    "Running": "info",
    "Done": "success",
    "Aborted": "warning",
    "Error": "danger",
}
SPLITS = ("train", "val", "test")


def status(job: Job | None) -> dict[str, Any]:
    """`/jobs/<id>/status`: always answered, `error` set only when the job is unknown."""
    if job is None:
        return {"error": "Job not found."}
    return {"status": job.status, "type": JOB_TYPES[job.type], "name": job.name, "error": None}


History = list[tuple[str, datetime]]


def _common(cur: Cursor, job: Job, history: History | None = None) -> dict[str, Any]:
    notes: list[str] = []
    if history is None:
        history = queries.status_history(cur, job.id)
        notes = queries.status_notes(cur, job.id)
    out = {
        "id": job.id,
        "name": job.name,
        "status": job.status,
        "type": job.type,
        "username": job.username,
        "group": job.group,
        "creation time": job.created.isoformat(),
        "submitted": job.created.timestamp(),
        "status_history": [[s, at.timestamp()] for s, at in history],
        "progress": 1.0 if job.status == "Done" else job.progress,
        "eta_seconds": job.eta_seconds if job.running else None,
        "error": job.error,
        "notes": job.notes,
        "tags": job.tags,
        "form": kept_form(job.form or {}),
        "spec": job.spec,
    }
    if any(notes):  # beside status_history (pairs, as DIGITS had): e.g. a worker was lost
        out["status_notes"] = notes
    return out


def dataset(cur: Cursor, job: Job) -> dict[str, Any]:
    """`/datasets/<id>.json`: DIGITS's keys (image_width/height NOT swapped) plus the details."""
    details = queries.dataset_details(cur, job.id)
    spec = job.spec
    width = details.image_width or spec.get("resize_width")
    height = details.image_height or spec.get("resize_height")
    channels = details.image_channels or spec.get("resize_channels")
    out = _common(cur, job)
    out.update(
        {
            "directory": f"{subjects.BUCKET_DATASETS}/{job.id}",
            "labels": details.labels,
            "warnings": details.warnings,
            "errors": details.errors,
            "resize_mode": spec.get("resize_mode"),
            "image dimensions": [height, width, channels],
            "mean_image": f"/datasets/{job.id}/mean.jpg" if details.mean_jpg else None,
            "ParseFolderTasks": _parse_tasks(job, details),
            "CreateDbTasks": [
                _db_task(job, details, split, width, height, channels)
                for split in _splits(job, details)
            ],
        }
    )
    return out


def _parse_task(job: Job, details: DatasetDetails) -> dict[str, Any]:
    counts = details.split_counts
    parsed = bool(details.labels) and bool(counts)
    return {
        "name": "Parse Folder (train/val)",
        "folder": details.folder or job.spec.get("folder_train"),
        "label_count": len(details.labels) if parsed else None,
        "train_count": counts.get("train") if parsed else None,
        "val_count": counts.get("val", 0) if parsed else None,
        "test_count": counts.get("test", 0) if parsed else None,
    }


def _parse_tasks(job: Job, details: DatasetDetails) -> list[dict[str, Any]]:
    """One task per source folder, as DIGITS: separate val/test folders get their own."""
    tasks = [_parse_task(job, details)]
    for split in ("val", "test"):
        folder = job.spec.get(f"folder_{split}") if job.spec.get(f"has_{split}_folder") else None
        if not folder:
            continue
        tasks[0][f"{split}_count"] = 0 if tasks[0]["label_count"] is not None else None
        count = details.split_counts.get(split) if tasks[0]["label_count"] is not None else None
        tasks.append(
            {
                "name": f"Parse Folder ({split})",
                "folder": folder,
                "label_count": _classes_in(details, split, tasks[0]["label_count"]),
                "train_count": 0 if count is not None else None,
                "val_count": count if split == "val" else (0 if count is not None else None),
                "test_count": count if split == "test" else (0 if count is not None else None),
            }
        )
    return tasks


def _classes_in(details: DatasetDetails, split: str, default: int | None) -> int | None:
    """Classes with images in a separate folder's split (min_per_class may drop some there)."""
    for entry in details.splits:
        if entry.get("split") == split and entry.get("class_counts") is not None:
            return sum(1 for n in entry["class_counts"] if n)
    return default


def _splits(job: Job, details: DatasetDetails) -> list[str]:
    if details.splits:
        return [s["split"] for s in details.splits]
    if details.split_counts:
        return [s for s in SPLITS if details.split_counts.get(s)]
    spec = job.spec
    pct = {"val": spec.get("folder_pct_val", 25), "test": spec.get("folder_pct_test", 0)}
    return ["train", *[s for s in ("val", "test") if pct[s]]]


def _db_task(
    job: Job, details: DatasetDetails, split: str, width: Any, height: Any, channels: Any
) -> dict[str, Any]:
    built = next((s for s in details.splits if s.get("split") == split), None)
    counts = built.get("class_counts", []) if built else []
    failed = built.get("class_error_counts", []) if built else []
    # Events from before sharding list no shards: their one rec/idx pair is the only shard.
    shards = (built.get("shards") or [built]) if built else []
    return {
        "name": f"Create DB ({split})",
        "split": split,
        "entries": built.get("entries") if built else None,
        "shard_count": len(shards) if built else None,
        "rec_bytes": sum(s.get("rec", {}).get("size", 0) for s in shards) if built else None,
        "error_count": built.get("error_count", 0) if built else None,
        "image_width": width,
        "image_height": height,
        "image_channels": channels,
        "backend": "recordio",
        "encoding": details.encoding or job.spec.get("encoding", "png"),
        "compression": job.spec.get("compression", "none"),
        "resize_mode": job.spec.get("resize_mode"),
        "class_counts": counts,
        "distribution": dict(zip(details.labels, counts, strict=False)),
        "class_error_counts": failed,
        "error_distribution": dict(zip(details.labels, failed, strict=False)),
    }


def model(
    cur: Cursor,
    job: Job,
    datasets: dict[str, Job] | None = None,
    epochs: list[float] | None = None,
    history: History | None = None,
    details: dict[str, DatasetDetails] | None = None,
) -> dict[str, Any]:
    """`/models/<id>.json`: DIGITS's model json_dict, with snapshot epochs and the spec.

    A list of models passes what it read for all of them at once (datasets, epochs, history,
    dataset details): one query each per list, not per model.
    """
    spec = job.spec
    if datasets is not None:
        ds = datasets.get(job.dataset_id or "")
    else:
        ds = queries.get_job(cur, job.dataset_id or "", include_deleted=True)
    ds_spec = ds.spec if ds is not None else {}
    if ds is None:
        built = DatasetDetails()
    elif details is not None and ds.id in details:
        built = details[ds.id]
    else:
        built = queries.dataset_details(cur, ds.id)
    # [H, W, C] as DIGITS reports it: what the build wrote, else what it was asked for.
    dims = [
        built.image_height or ds_spec.get("resize_height"),
        built.image_width or ds_spec.get("resize_width"),
        built.image_channels or ds_spec.get("resize_channels"),
    ]
    if epochs is None:
        epochs = [s.epoch for s in queries.snapshots(cur, job.id)]
    out = _common(cur, job, history)
    out.update(
        {
            "directory": f"{subjects.BUCKET_MODELS}/{job.id}",
            "job id": job.id,
            "dataset_id": job.dataset_id,
            "dataset_name": ds.name if ds is not None else None,
            "image dimensions": dims,
            "image resize mode": ds_spec.get("resize_mode"),
            "mean subtraction": spec.get("use_mean"),
            "mean file": "mean.npy" if spec.get("use_mean", "image") != "none" else None,
            "labels file": "labels.txt",
            "snapshot file": f"snapshot-{epochs[-1]:g}.params" if epochs else "no snapshots",
            "framework": "mxnet",
            "network": spec.get("standard_network") if spec.get("method") != "custom" else "custom",
            "snapshots": epochs,
            "epoch": job.epoch,
            "train_epochs": spec.get("train_epochs"),
            "devices": job.devices,
            "attempt": job.attempt,
            "detail": job.detail,
        }
    )
    return out


def pretrained(
    cur: Cursor, job: Job, epochs: list[float] | None = None, history: History | None = None
) -> dict[str, Any]:
    """`/pretrained_models/<id>.json`: DIGITS's pretrained job, plus how it preprocesses."""
    spec = job.spec
    if epochs is None:
        epochs = [s.epoch for s in queries.snapshots(cur, job.id)]
    out = _common(cur, job, history)
    out.update(
        {
            "directory": f"{subjects.BUCKET_MODELS}/{job.id}",
            "job id": job.id,
            "dataset_id": None,
            "framework": spec.get("framework", "mxnet"),
            "image dimensions": [
                spec.get("resize_height"),
                spec.get("resize_width"),
                spec.get("resize_channels"),
            ],
            "image resize mode": spec.get("resize_mode"),
            "image_type": "color" if spec.get("resize_channels") == 3 else "grayscale",
            "mean subtraction": spec.get("use_mean"),
            "labels": spec.get("labels", []),
            "has_labels": bool(spec.get("labels")),
            "labels file": "labels.txt",
            "snapshot file": f"snapshot-{epochs[-1]:g}.params" if epochs else "no snapshots",
            "snapshots": epochs,
            "source": spec.get("source"),
            "source_model_id": spec.get("source_model_id") or None,
            "fine_tunable": spec.get("fine_tunable", False),
        }
    )
    return out


def model_like(cur: Cursor, job: Job) -> dict[str, Any]:
    """A job that classifies: a trained model's JSON or a pretrained model's."""
    return pretrained(cur, job) if job.type == "pretrained_model" else model(cur, job)


def index(cur: Cursor, jobs_dir: str) -> dict[str, Any]:
    """`/index.json`: every dataset briefly, every model in full (a fixed number of queries,
    whatever the number of jobs)."""
    jobs = queries.list_jobs(cur)
    datasets = {j.id: j for j in jobs if j.type == "dataset"}
    models = [j for j in jobs if j.type == "model"]
    # Models of a deleted dataset still name it (its row stays, marked deleted).
    missing = {m.dataset_id for m in models if m.dataset_id and m.dataset_id not in datasets}
    for dataset_id in sorted(missing):
        if (found := queries.get_job(cur, dataset_id, include_deleted=True)) is not None:
            datasets[dataset_id] = found
    epochs = queries.snapshot_epochs(cur, [m.id for m in models])
    histories = queries.status_histories(cur, [j.id for j in jobs if j.type != "dataset"])
    details = queries.many_dataset_details(cur, datasets)
    live = [d for d in datasets.values() if not d.deleted]
    return {
        "version": VERSION,
        "jobs_dir": jobs_dir,
        "datasets": [{"id": d.id, "name": d.name, "status": d.status} for d in live],
        "models": [model(cur, m, datasets, epochs[m.id], histories[m.id], details) for m in models],
        "pretrained_models": [
            pretrained(cur, j, history=histories[j.id])
            for j in jobs
            if j.type == "pretrained_model"
        ],
    }


def completed_jobs(cur: Cursor, ids: Iterable[str] | None = None) -> dict[str, Any]:
    """`/completed_jobs.json`: DIGITS's home tables (running jobs first, then finished ones).

    Beside DIGITS's fields every job has `tags` and `duration` (seconds from its first Running
    to its end, or to now while it runs; None before it ran), and a model `best_val_accuracy`
    and `final_train_loss` (None until measured). `ids` keeps only those jobs (the home page
    refreshes its running models' sparklines and metrics so)."""
    jobs = queries.list_jobs(cur) if ids is None else queries.jobs_by_id(cur, ids)
    model_ids = [j.id for j in jobs if j.type == "model"]
    summaries = queries.metric_summaries(cur, model_ids)
    sparklines = queries.loss_sparklines(cur, model_ids)
    histories = queries.status_histories(cur, [j.id for j in jobs])
    now = utcnow()
    out: dict[str, Any] = {
        "running": [],
        "datasets": [],
        "models": [],
        "pretrained_models": [],
        "model_output_fields": [],
    }
    fields: set[str] = set()
    for job in jobs:
        end = now if job.running else job.updated
        item: dict[str, Any] = {
            "id": job.id,
            "name": job.name,
            "group": job.group,
            "status": job.status,
            "status_css": STATUS_CSS.get(job.status, "default"),
            "submitted": job.created.timestamp(),
            "elapsed": max(0.0, (end - job.created).total_seconds()),
            "progress": 1.0 if job.status == "Done" else job.progress,
            "eta_seconds": job.eta_seconds if job.running else None,
            "type": job.type,
            "username": job.username,
            "tags": job.tags,
            "duration": duration(histories[job.id], job.running, now),
        }
        if job.type == "dataset":
            item["backend"] = "recordio"
        elif job.type == "pretrained_model":
            item.update(framework="mxnet", has_labels=bool(job.spec.get("labels")))
        else:
            summary_ = summaries.get(job.id, {})
            item.update(framework="mxnet", dataset_id=job.dataset_id, **summary_)
            item["loss_sparkline"] = sparklines.get(job.id, [])
            item["network"] = (
                job.spec.get("standard_network") if job.spec.get("method") != "custom" else "custom"
            )
            item["best_val_accuracy"] = summary_.get("accuracy (val) max")
            item["final_train_loss"] = summary_.get("loss (train) last")
            fields.update(k.rsplit(" ", 1)[0] for k in summary_)
        bucket = "running" if job.running else f"{job.type}s"
        out[bucket].append(item)
    out["model_output_fields"] = sorted(fields)
    return out


def duration(history: History, running: bool, now: datetime) -> float | None:
    """Wall seconds from the first Running to the status that ended the job (the last one),
    or to `now` while it runs; None if it never ran."""
    start = next((at for s, at in history if s == "Running"), None)
    if start is None:
        return None
    end = now if running else history[-1][1]
    return max(0.0, (end - start).total_seconds())


def summary(job: Job) -> dict[str, Any]:
    """A job in one line (for `/api/v1` lists and SSE history)."""
    return {
        "id": job.id,
        "type": job.type,
        "name": job.name,
        "status": job.status,
        "username": job.username,
        "group": job.group,
        "created": job.created.isoformat(),
        "updated": job.updated.isoformat(),
        "dataset_id": job.dataset_id,
        "progress": 1.0 if job.status == "Done" else job.progress,
        "eta_seconds": job.eta_seconds if job.running else None,
        "epoch": job.epoch,
        "error": job.error,
        "tags": job.tags,
    }
