"""`POST /models/visualize-lr`: DIGITS's learning-rate schedule preview as chart columns.

The browser draws the same curve itself (web/static/lib/lr.js); this route keeps DIGITS's API.
Both follow the table in tests/fixtures/lr_table.json, as the trainer's `lr_at` does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from litestar import Request, Response, post

from digits_gateway.forms import LR_POLICIES, Fields
from digits_gateway.params import read_params

PARAMS = {
    "lr_step_size": 33.0,
    "lr_step_gamma": 0.1,
    "lr_multistep_gamma": 0.5,
    "lr_exp_gamma": 0.95,
    "lr_inv_gamma": 0.1,
    "lr_inv_power": 0.5,
    "lr_poly_power": 3.0,
    "lr_sigmoid_step": 50.0,
    "lr_sigmoid_gamma": 0.1,
}


def lr_at(p: float, base: float, policy: str, q: Mapping[str, Any]) -> float:
    """The learning rate at `p` percent of training (digits-features §2.2); `q` holds the
    policy parameters (PARAMS names, plus `steps`: the multistep values as floats)."""
    match policy:
        case "fixed":
            return base
        case "step":
            return base * q["lr_step_gamma"] ** math.floor(p / q["lr_step_size"])
        case "multistep":
            return base * q["lr_multistep_gamma"] ** sum(1 for v in q["steps"] if p >= v)
        case "exp":
            return base * q["lr_exp_gamma"] ** p
        case "inv":
            return base * (1.0 + q["lr_inv_gamma"] * p) ** (-q["lr_inv_power"])
        case "poly":
            return base * max(0.0, 1.0 - p / 100.0) ** q["lr_poly_power"]
        case "sigmoid":
            x = q["lr_sigmoid_gamma"] * (p - q["lr_sigmoid_step"])
            return 0.0 if x > 700 else base / (1.0 + math.exp(x))  # exp overflows past ~709
    raise ValueError(policy)


def schedule(values: Mapping[str, Any]) -> list[list[Any]]:
    """One column per base learning rate: `["Learning Rate i", lr(0), …, lr(100)]`."""
    f = Fields(values)
    policy = f.choice("lr_policy", LR_POLICIES, "step")
    rates = f.numbers("learning_rate", [0.01], 0.0)
    q: dict[str, Any] = {name: f.number(name, default) for name, default in PARAMS.items()}
    q["steps"] = (
        f.numbers("lr_multistep_values", [50.0, 85.0], 0.0) if policy == "multistep" else []
    )
    if policy == "step" and not q["lr_step_size"] > 0:
        f.error("lr_step_size", "Number must be greater than 0.")
    f.check()
    columns = []
    for i, base in enumerate(rates):
        column: list[Any] = [f"Learning Rate {i}"]
        for p in range(101):
            try:
                lr = lr_at(float(p), base, policy, q)
            except (OverflowError, ZeroDivisionError):
                lr = None
            column.append(lr if lr is None or math.isfinite(lr) else None)
        columns.append(column)
    return columns


@post("/models/visualize-lr", status_code=200)
async def visualize_lr(request: Request[Any, Any, Any]) -> Response[Any]:
    """`{"data": {"columns": [...]}}` as DIGITS; a bad field is a 400 naming it."""
    params = await read_params(request)
    return Response({"data": {"columns": schedule(params.values)}})
