"""`digits train`: create a training job and follow it (loss and accuracy live); Ctrl-C stops
following, never the job."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from digits_cli.client.api import DONE, INTERRUPTED, USAGE, CliError
from digits_cli.client.follow import follow
from digits_cli.commands._common import Context, json_flag, print_ended

NETWORKS = ("lenet", "alexnet", "googlenet", "resnet18")


def network_fields(network: str) -> dict[str, Any]:
    """A standard network by name, or a custom one from a Python file."""
    if network in NETWORKS:
        return {"method": "standard", "network": network}
    path = Path(network)
    if path.suffix != ".py" or not path.is_file():
        raise CliError(
            f"--network: {network!r} is neither one of {', '.join(NETWORKS)} nor a .py file",
            USAGE,
        )
    return {"method": "custom", "custom_network": path.read_text()}


def model_body(args: argparse.Namespace) -> dict[str, Any]:
    """The `/api/v1/models` body from the flags (unset flags keep the server's defaults)."""
    body: dict[str, Any] = {
        "name": args.name or f"{Path(args.network).stem}-on-{args.dataset}",
        "dataset_id": args.dataset,
        "train_epochs": args.epochs,
        **network_fields(args.network),
    }
    optional = {
        "batch_size": args.batch_size,
        "learning_rate": args.learning_rate,
        "solver_type": args.solver,
        "lr_policy": args.lr_policy,
        "random_seed": args.seed,
        "group": args.group,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    return body


def train(ctx: Context, args: argparse.Namespace) -> int:
    """Create the job, then follow it to its end (or return at once with --no-wait)."""
    body = model_body(args)
    ref: dict[str, Any] = {}
    try:
        ref = ctx.api.json("POST", "/api/v1/models/", json=body)
        ctx.err.print(f"model {ref['id']} ({ref['name']}): {ref['status']}", highlight=False)
        if args.no_wait:
            if ctx.as_json:
                ctx.print_json(ref)
            return DONE
        code, job = follow(ctx.api, "model", ref["id"], ctx.err, quiet=ctx.as_json)
    except KeyboardInterrupt:
        if not ref:
            raise
        ctx.err.print(
            f"\nStopped following; model {ref['id']} keeps training on the server.\n"
            f"Follow it again: digits jobs show {ref['id']} --follow\n"
            f"Abort it:        digits jobs abort {ref['id']}",
            highlight=False,
        )
        return INTERRUPTED
    print_ended(ctx, "model", job)
    return code


def register(verbs: argparse._SubParsersAction) -> None:
    """`train`."""
    parser = verbs.add_parser(
        "train",
        parents=[json_flag()],
        help="train a model on a dataset and follow it",
        description="Creates a training job and shows its progress with loss and accuracy "
        "until it ends (exit 0 Done, 1 Error/Aborted). Ctrl-C stops following only: the job "
        "keeps running, and the command prints how to abort it.",
    )
    parser.add_argument("--dataset", required=True, help="the dataset's id")
    parser.add_argument(
        "--network", default="lenet", help=f"{'|'.join(NETWORKS)}, or a custom FILE.py"
    )
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--name", help="the model's name (default: network and dataset)")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--learning-rate", type=float)
    parser.add_argument("--solver", help="SGD (default), ADAM, NESTEROV, RMSPROP...")
    parser.add_argument(
        "--lr-policy", choices=("fixed", "step", "multistep", "exp", "inv", "poly", "sigmoid")
    )
    parser.add_argument("--seed", type=int, help="random seed (reproducible runs)")
    parser.add_argument("--group", help="group name shown on the home page")
    parser.add_argument("--no-wait", action="store_true", help="return once the job is queued")
    parser.set_defaults(verb_fn=train)
