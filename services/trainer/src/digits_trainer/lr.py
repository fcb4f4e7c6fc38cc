"""Learning-rate policies, in percent of total training, exactly as DIGITS defines them."""

from __future__ import annotations

import math

from digits_proto.models import TrainSpec


def multistep_values(text: str) -> list[float]:
    """The `lr_multistep_values` CSV ("50,85") as floats; raises ValueError on a bad item."""
    return [
        float(part) for part in text.replace("[", "").replace("]", "").split(",") if part.strip()
    ]


def lr_at(progress_pct: float, spec: TrainSpec) -> float:
    """The learning rate at `progress_pct` (0..100) of training (digits-features §2.2).

    DIGITS's UI gives every step parameter in percent of training; Caffe converted them to
    iterations, so computing in percent directly gives the same curve as DIGITS's preview.
    """
    p, base = progress_pct, spec.learning_rate
    match spec.lr_policy:
        case "fixed":
            return base
        case "step":
            return base * spec.lr_step_gamma ** math.floor(p / spec.lr_step_size)
        case "multistep":
            passed = sum(1 for v in multistep_values(spec.lr_multistep_values) if p >= v)
            return base * spec.lr_multistep_gamma**passed
        case "exp":
            return base * spec.lr_exp_gamma**p
        case "inv":
            return base * (1.0 + spec.lr_inv_gamma * p) ** (-spec.lr_inv_power)
        case "poly":
            return base * max(0.0, 1.0 - p / 100.0) ** spec.lr_poly_power
        case "sigmoid":
            x = spec.lr_sigmoid_gamma * (p - spec.lr_sigmoid_step)
            return 0.0 if x > 700 else base / (1.0 + math.exp(x))  # exp overflows past ~709
        case other:
            raise ValueError(f"unknown lr_policy {other!r}")
