"""Compare runs: `/models/compare?ids=a,b,…` or `?group=<name>` and its JSON `/api/v1/compare`.

The page is a frame; compare.js fetches the JSON (settings that differ, best/final metrics and
every run's curves in one call) and polls it while any run is unfinished.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Any

from litestar import Request, get
from litestar.params import Parameter
from litestar.response import Template

from digits_gateway import ui
from digits_gateway.deps import Gateway
from digits_gateway.forms import FormErrors
from digits_gateway.params import username
from digits_gateway.readmodel import comparison, queries
from digits_gateway.readmodel.queries import Job

MAX_RUNS = 20
MAX_POINTS = 1000  # per run and phase in the JSON
FINISHED = ("Done", "Error", "Aborted")

# (key, label): the settings a comparison shows, in this order. lr_* parameters count only for
# the policies that use them, so two runs on different policies do not "differ" in unused ones.
SETTINGS = (
    ("network", "Network"),
    ("dataset", "Dataset"),
    ("solver_type", "Solver"),
    ("learning_rate", "Base learning rate"),
    ("lr_policy", "LR policy"),
    ("lr_step_size", "LR step size (%)"),
    ("lr_step_gamma", "LR step gamma"),
    ("lr_multistep_values", "LR multistep values (%)"),
    ("lr_multistep_gamma", "LR multistep gamma"),
    ("lr_exp_gamma", "LR exp gamma"),
    ("lr_inv_gamma", "LR inv gamma"),
    ("lr_inv_power", "LR inv power"),
    ("lr_poly_power", "LR poly power"),
    ("lr_sigmoid_step", "LR sigmoid step (%)"),
    ("lr_sigmoid_gamma", "LR sigmoid gamma"),
    ("batch_size", "Batch size"),
    ("batch_accumulation", "Batch accumulation"),
    ("train_epochs", "Epochs"),
    ("momentum", "Momentum"),
    ("weight_decay", "Weight decay"),
    ("rms_decay", "RMS decay"),
    ("random_seed", "Random seed"),
    ("use_mean", "Mean subtraction"),
    ("crop_size", "Crop size"),
    ("shuffle", "Shuffle"),
    ("val_interval", "Validation interval (epochs)"),
    ("snapshot_interval", "Snapshot interval (epochs)"),
    ("select_gpu_count", "Devices"),
    ("aug_flip", "Flip"),
    ("aug_quad_rot", "Quadrilateral rotation"),
    ("aug_rot", "Rotation (±°)"),
    ("aug_scale", "Rescale (stddev)"),
    ("aug_noise", "Noise (stddev)"),
    ("aug_contrast", "Contrast"),
    ("aug_whitening", "Whitening"),
    ("aug_hsv_use", "HSV shifts"),
    ("early_stopping_patience", "Early stopping patience"),
    ("snapshot_keep", "Snapshots kept"),
)
POLICY_PARAMS = {
    "step": ("lr_step_size", "lr_step_gamma"),
    "multistep": ("lr_multistep_values", "lr_multistep_gamma"),
    "exp": ("lr_exp_gamma",),
    "inv": ("lr_inv_gamma", "lr_inv_power"),
    "poly": ("lr_poly_power",),
    "sigmoid": ("lr_sigmoid_step", "lr_sigmoid_gamma"),
}
ALL_POLICY_PARAMS = {p for params in POLICY_PARAMS.values() for p in params}

Ids = Annotated[
    str | None,
    Parameter(
        query="ids",
        description=f"Comma-separated model ids (2 to {MAX_RUNS}); or give `group` instead",
        max_length=4000,
    ),
]
Group = Annotated[
    str | None,
    Parameter(
        query="group",
        description="A job group's name: all its models (e.g. a sweep's jobs)",
        max_length=400,
    ),
]


def requested_ids(ids: str | None, group: str | None) -> list[str] | None:
    """The ids asked for (None when a group is asked for); FormErrors naming the field."""
    if ids is not None and group is not None:
        raise FormErrors({"ids": ["Give either ids or group, not both"]})
    if group is not None:
        if not group.strip():
            raise FormErrors({"group": ["Name a job group"]})
        return None
    wanted = list(dict.fromkeys(i.strip() for i in (ids or "").split(",") if i.strip()))
    if not wanted:
        raise FormErrors({"ids": ["Name the models to compare: ?ids=<id>,<id> or ?group=<name>"]})
    if len(wanted) > MAX_RUNS:
        raise FormErrors(
            {"ids": [f"At most {MAX_RUNS} models can be compared at once ({len(wanted)} given)"]}
        )
    return wanted


def select_runs(gw: Gateway, ids: str | None, group: str | None) -> tuple[list[Job], list[str]]:
    """(the models found, in the order asked; the ids that name no live model)."""
    wanted = requested_ids(ids, group)
    with gw.db.cursor() as cur:
        if wanted is None:
            found = comparison.models_in_group(cur, (group or "").strip())
            if len(found) > MAX_RUNS:
                raise FormErrors(
                    {
                        "group": [
                            f"At most {MAX_RUNS} models can be compared at once: this group has "
                            f"{len(found)}; pick some with ?ids="
                        ]
                    }
                )
            return found, []
        by_id = comparison.models_by_id(cur, wanted)
    return [by_id[i] for i in wanted if i in by_id], [i for i in wanted if i not in by_id]


def _unused(key: str, policy: str, solver: str | None) -> bool:
    """A parameter the run's LR policy or solver ignores (it would only "differ" as noise)."""
    if key in ALL_POLICY_PARAMS:
        return key not in POLICY_PARAMS.get(policy, ())
    return key == "rms_decay" and solver != "RMSPROP"


def _settings(job: Job, dataset_names: dict[str, str]) -> dict[str, Any]:
    spec = job.spec
    policy = spec.get("lr_policy", "step")
    out: dict[str, Any] = {}
    for key, _ in SETTINGS:
        if key == "network":
            method = spec.get("method", "standard")
            out[key] = (
                spec.get("standard_network")
                if method == "standard"
                else f"previous: {spec.get('previous_network')}"
                if method == "previous"
                else method
            )
        elif key == "dataset":
            out[key] = dataset_names.get(job.dataset_id or "", job.dataset_id)
        elif _unused(key, policy, spec.get("solver_type")):
            out[key] = None
        else:
            out[key] = spec.get(key)
    return out


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def settings_table(runs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Rows of the settings that differ (one value per run, in the runs' order; `numeric` when
    every value set is a number) and those the same in all (one value)."""
    differ: list[dict[str, Any]] = []
    same: list[dict[str, Any]] = []
    for key, label in SETTINGS:
        values = [r["settings"].get(key) for r in runs]
        if all(v is None for v in values):
            continue
        if len({repr(v) for v in values}) > 1:
            numeric = all(_is_number(v) for v in values if v is not None)
            differ.append({"key": key, "label": label, "values": values, "numeric": numeric})
        else:
            same.append({"key": key, "label": label, "value": values[0]})
    return {"differ": differ, "same": same}


def _finite(values: list[Any]) -> list[tuple[int, float]]:
    return [(i, v) for i, v in enumerate(values) if v is not None and math.isfinite(v)]


def summary(series: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Best val accuracy (and its epoch), best and final val loss, final train loss."""
    val = series.get("val", {"epoch": [], "values": {}})
    train = series.get("train", {"epoch": [], "values": {}})
    acc = _finite(val["values"].get("accuracy", []))
    val_loss = _finite(val["values"].get("loss", []))
    train_loss = _finite(train["values"].get("loss", []))
    best = max(acc, key=lambda p: p[1], default=None)
    return {
        "best_val_accuracy": best[1] if best else None,
        "best_val_accuracy_epoch": val["epoch"][best[0]] if best else None,
        "best_val_loss": min((v for _, v in val_loss), default=None),
        "final_val_loss": val_loss[-1][1] if val_loss else None,
        "final_train_loss": train_loss[-1][1] if train_loss else None,
    }


def thinned(series: dict[str, dict[str, Any]], limit: int = MAX_POINTS) -> dict[str, Any]:
    """At most `limit` points per phase (every k-th, the last always kept): a chart a screen
    wide shows no more, and the page polls this every few seconds. Summaries use every point."""
    out: dict[str, Any] = {}
    for phase, columns in series.items():
        n = len(columns["epoch"])
        if n <= limit:
            out[phase] = columns
            continue
        step = math.ceil(n / limit)
        keep = [*range(0, n - 1, step), n - 1]
        out[phase] = {
            **{k: [v[i] for i in keep] for k, v in columns.items() if k != "values"},
            "values": {name: [v[i] for i in keep] for name, v in columns["values"].items()},
        }
    return out


def _duration(history: list[tuple[str, datetime]], status: str) -> float | None:
    """Seconds from the first Running to the end (or now, while it is unfinished)."""
    started = next((at for s, at in history if s == "Running"), None)
    if started is None:
        return None
    end = history[-1][1] if status in FINISHED and history else datetime.now(UTC)
    return max(0.0, (end - started).total_seconds())


def compare_view(gw: Gateway, ids: str | None, group: str | None) -> dict[str, Any]:
    """The comparison's JSON: runs (best first), settings that differ, missing ids."""
    jobs, missing = select_runs(gw, ids, group)
    with gw.db.cursor() as cur:
        series = comparison.metric_columns(cur, [j.id for j in jobs])
        histories = queries.status_histories(cur, [j.id for j in jobs])
        datasets = comparison_datasets(cur, jobs)
    runs = [
        {
            "id": j.id,
            "name": j.name,
            "status": j.status,
            "username": j.username,
            "group": j.group,
            "created": j.created.isoformat(),
            "duration_seconds": _duration(histories.get(j.id, []), j.status),
            "finished": j.status in FINISHED,
            "url": f"/models/{j.id}",
            "settings": _settings(j, datasets),
            "summary": summary(series.get(j.id, {})),
            "metrics": thinned(series.get(j.id, {})),
        }
        for j in jobs
    ]
    # Best first (by best val accuracy; runs without one last, in the order asked).
    runs.sort(key=lambda r: -(r["summary"]["best_val_accuracy"] or -math.inf))
    best = runs[0]["id"] if runs and runs[0]["summary"]["best_val_accuracy"] is not None else None
    return {
        "group": group.strip() if group is not None else None,
        "runs": runs,
        "missing": missing,
        "max_runs": MAX_RUNS,
        "best_run": best,
        "finished": all(r["finished"] for r in runs),
        "settings": settings_table(runs),
    }


def comparison_datasets(cur: queries.Cursor, jobs: list[Job]) -> dict[str, str]:
    """dataset id → name (deleted datasets included: a run still names what it trained on)."""
    names: dict[str, str] = {}
    for dataset_id in {j.dataset_id for j in jobs if j.dataset_id}:
        found = queries.get_job(cur, dataset_id, include_deleted=True)
        if found is not None:
            names[dataset_id] = found.name
    return names


@get("/api/v1/compare", tags=["models"])
async def compare_json(gw: Gateway, ids: Ids = None, group: Group = None) -> dict[str, Any]:
    """Several models side by side, in one call: `?ids=<id>,<id>,…` (2 to 20) or `?group=<name>`.

    Returns `runs` sorted best validation accuracy first, each with `settings`, `summary`
    (best_val_accuracy, best_val_accuracy_epoch, best_val_loss, final_val_loss,
    final_train_loss), `status`, `finished`, `duration_seconds` and `metrics` (phase →
    `{epoch: [], iteration: [], time: [], values: {name: []}}` columns, thinned to at most
    1,000 points each, the last kept; `time` is when a point was measured, epoch seconds);
    `settings.differ` (rows with one value per run, in `runs` order, `numeric` when all are
    numbers) and `settings.same`; `missing` (asked-for ids that name no live model); `best_run`;
    `finished` (every run ended: stop polling). 400 naming `ids` or `group` for no ids, more than 20, or both given.
    """
    return compare_view(gw, ids, group)


@get("/models/compare", include_in_schema=False)
async def compare_page(
    gw: Gateway, request: Request[Any, Any, Any], ids: Ids = None, group: Group = None
) -> Template:
    """The comparison page; the same query as the JSON, checked here so a bad link says why."""
    error = ""
    found: list[Job] = []
    missing: list[str] = []
    try:
        found, missing = select_runs(gw, ids, group)
    except FormErrors as e:
        error = " ".join(m for messages in e.errors.values() for m in messages)
    return compare_page_template(
        username(request),
        ids or "",
        group,
        found,
        missing,
        error,
        status_code=400 if error else 200,
    )


def compare_page_template(
    user: str | None,
    ids: str,
    group: str | None,
    found: list[Job] | list[dict[str, Any]],
    missing: list[str],
    error: str,
    status_code: int = 200,
) -> Template:
    """Render compare.html (the fake site of the browser tests renders it the same way)."""
    names = [j["name"] if isinstance(j, dict) else j.name for j in found]
    title = f"Compare: {group}" if group else "Compare models"
    return ui.pages()._page(
        "models/compare.html",
        title,
        user,
        status_code=status_code,
        compare={
            "ids": ids,
            "group": group or "",
            "names": names,
            "missing": missing,
            "error": error,
            "max_runs": MAX_RUNS,
        },
    )
