"""Deployment archives (DIGITS's download): exported network, labels, mean, info.json, a script."""

from __future__ import annotations

import contextlib
import json
import tarfile
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from digits_inference import errors
from digits_inference.domain import ModelView, Plan

# DIGITS's extensions → tarfile write modes ("zip" is handled apart).
FORMATS = {"tar": "w", "tar.gz": "w:gz", "tgz": "w:gz", "tar.bz2": "w:bz2", "zip": ""}
SCRIPT = Path(__file__).with_name("classify_script.py")


def check_format(archive_format: str) -> str:
    """The format, or a 400 naming the allowed ones."""
    if archive_format not in FORMATS:
        raise errors.BadArchiveFormat(archive_format, list(FORMATS))
    return archive_format


def archive_name(job_id: str, epoch: float, archive_format: str) -> str:
    """`<job_id>_epoch_<epoch>.<ext>`, as DIGITS names downloads."""
    return f"{job_id}_epoch_{epoch:g}.{archive_format}"


def member_names(epoch: float) -> dict[str, str]:
    """File names inside the archive (info.json points at them)."""
    return {
        "symbol": f"snapshot_epoch_{epoch:g}-symbol.json",
        "params": f"snapshot_epoch_{epoch:g}.params",
        "labels": "labels.txt",
        "mean": "mean.npy",
        "mean_jpg": "mean.jpg",
        "onnx": "model.onnx",
        "script": "classify.py",
    }


def info_json(plan: Plan, model: ModelView, files: dict[str, str]) -> dict[str, object]:
    """DIGITS's `info.json` keys, plus what a deployment needs to preprocess like training."""
    info: dict[str, object] = {
        "id": plan.job_id,
        "job id": plan.job_id,
        "name": model.name,
        "status": model.status,
        "dataset_id": model.dataset_id,
        "creation time": model.created_at,
        "username": model.username,
        "image dimensions": [plan.height, plan.width, plan.channels],
        "image resize mode": plan.resize_mode,
        "mean file": files.get("mean", ""),
        "mean image file": files.get("mean_jpg", ""),
        "mean subtraction": model.use_mean,
        "snapshot file": files["params"],
        "model file": files["symbol"],
        "labels file": files["labels"],
        "framework": "mxnet",
        "snapshot epoch": plan.epoch,
        "input shape": list(plan.input_shape),
        "crop size": model.crop_size,
        "input": "float32 N×C×H×W raw pixels 0–255, RGB order; the network subtracts the mean",
        "output": "logits (apply softmax)",
        "digits version": "reborn",
    }
    if "onnx" in files:
        info["onnx file"] = files["onnx"]
    return info


def export_onnx(symbol: Path, params: Path, input_shape: tuple[int, ...], target: Path) -> Path:
    """The network as ONNX (dynamic batch), with initializers dropped from the graph inputs."""
    import mxnet as mx
    import onnx

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # Objects, not paths: the exporter parses an epoch out of a params file's name.
        weights = {k.split(":", 1)[-1]: v for k, v in mx.nd.load(str(params)).items()}
        mx.onnx.export_model(
            mx.sym.load(str(symbol)),
            weights,
            in_shapes=[(1, *input_shape)],
            in_types=[np.float32],
            onnx_file_path=str(target),
            dynamic=True,
            dynamic_input_shapes=[(None, *input_shape)],
        )
    model = onnx.load(str(target))
    initializers = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    del model.graph.input[:]
    model.graph.input.extend(inputs)
    onnx.save(model, str(target))
    return target


@contextlib.contextmanager
def naming(path: Path) -> Iterator[None]:
    """Give an OSError raised while writing `path` that file's name (write() errors carry
    none): an export on a full disk says which file it could not write."""
    try:
        yield
    except OSError as e:
        if e.filename is None:
            raise OSError(e.errno, e.strerror or str(e), str(path)) from e
        raise


def write_archive(target: Path, archive_format: str, members: dict[str, Path]) -> Path:
    """Write `members` (archive name → local file) into `target`, streamed from disk."""
    with naming(target):
        return _write_archive(target, archive_format, members)


def _write_archive(target: Path, archive_format: str, members: dict[str, Path]) -> Path:
    if archive_format == "zip":
        with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name, path in members.items():
                zf.write(path, arcname=name)
        return target
    with tarfile.open(target, FORMATS[archive_format]) as tf:
        for name, path in members.items():
            tf.add(path, arcname=name, recursive=False)
    return target


def labels_and_info(folder: Path, plan: Plan, info: dict[str, object]) -> dict[str, Path]:
    """Write labels.txt, info.json and classify.py into `folder`."""
    labels = folder / "labels.txt"
    with naming(labels):
        labels.write_text("".join(f"{label}\n" for label in plan.labels))
    info_path = folder / "info.json"
    with naming(info_path):
        info_path.write_text(json.dumps(info, indent=4, ensure_ascii=False))
    script = folder / "classify.py"
    with naming(script):
        script.write_text(SCRIPT.read_text())
    return {"labels": labels, "info": info_path, "script": script}
