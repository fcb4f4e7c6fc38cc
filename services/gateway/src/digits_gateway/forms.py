"""DIGITS form fields → bus commands; shared by the DIGITS routes and `/api/v1` (one translation).

Every value may arrive as text (query string, urlencoded or multipart form) or already typed
(a `/api/v1` body); messages follow WTForms' so DIGITS clients read familiar errors.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from typing import Any

from digits_proto.base import BlobRef
from digits_proto.datasets import CreateDataset, DatasetSpec
from digits_proto.models import CreateModel, TrainSpec

SOLVERS = (
    "SGD",
    "MOMENTUM",
    "NESTEROV",
    "ADAGRAD",
    "ADAGRADDA",
    "ADADELTA",
    "ADAM",
    "RMSPROP",
    "FTRL",
)
LR_POLICIES = ("fixed", "step", "multistep", "exp", "inv", "poly", "sigmoid")
FRAMEWORKS = ("mxnet", "caffe", "torch", "tensorflow")  # every one runs on MXNet here
TRUE = ("1", "true", "on", "yes", "y")
FALSE = ("0", "false", "off", "no", "n", "")


class FormErrors(Exception):
    """Input refused before any command was sent: field → messages (DIGITS's 400 body)."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__(errors)
        self.errors = errors


class Fields:
    """Typed reads of submitted values; every problem is collected under its field name."""

    def __init__(self, values: Mapping[str, Any]):
        self.values = values
        self.errors: dict[str, list[str]] = {}

    def error(self, name: str, message: str) -> None:
        self.errors.setdefault(name, []).append(message)

    def check(self) -> None:
        if self.errors:
            raise FormErrors(self.errors)

    def raw(self, name: str) -> Any:
        value = self.values.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        return value.strip() if isinstance(value, str) else value

    def text(self, name: str, default: str = "", required: bool = False) -> str:
        value = self.raw(name)
        if value is None:
            if required:
                self.error(name, "This field is required.")
            return default
        return str(value)

    def integer(
        self,
        name: str,
        default: int | None = None,
        minimum: int | None = None,
        maximum: int | None = None,
        required: bool = False,
    ) -> int | None:
        value = self.raw(name)
        if value is None:
            if required:
                self.error(name, "This field is required.")
            return default
        try:
            number = _to_int(value)
        except ValueError:
            self.error(name, "Not a valid integer value.")
            return default
        return self._bounded(name, number, minimum, maximum)

    def number(
        self,
        name: str,
        default: float | None = None,
        minimum: float | None = None,
        maximum: float | None = None,
    ) -> float | None:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = _to_float(value)
        except ValueError:
            self.error(name, "Not a valid float value.")
            return default
        return self._bounded(name, number, minimum, maximum)

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        value = self.raw(name)
        if value is None:
            return default
        if str(value) not in choices:
            self.error(name, f"Not a valid choice: {value!r} (one of {', '.join(choices)}).")
            return default
        return str(value)

    def boolean(self, name: str, default: bool) -> bool:
        value = self.values.get(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        # A checkbox after a hidden "0" of the same name sends "0,1" when ticked: last wins.
        text = str(value).rsplit(",", 1)[-1].strip().lower()
        if text in TRUE or text in FALSE:
            return text in TRUE
        self.error(name, "Not a valid boolean value.")
        return default

    def numbers(
        self, name: str, default: list[float], minimum: float, integer: bool = False
    ) -> list[Any]:
        """A comma list (`[0.01, 0.02]` or `0.01,0.02`): DIGITS's sweep fields."""
        value = self.raw(name)
        if value is None:
            return default
        parts = value if isinstance(value, list) else str(value).strip("[] ").split(",")
        out: list[Any] = []
        for part in parts:
            if isinstance(part, str) and not part.strip():
                continue
            try:
                number = _to_int(part) if integer else _to_float(part)
            except ValueError:
                kind = "integer" if integer else "float"
                self.error(name, f"Not a valid {kind} value: {str(part).strip()!r}.")
                return default
            if number < minimum:
                self.error(name, f"Every value must be at least {minimum:g}.")
                return default
            out.append(number)
        return out or default

    def _bounded(self, name: str, number: Any, minimum: Any, maximum: Any) -> Any:
        if minimum is not None and number < minimum:
            self.error(name, f"Number must be at least {minimum}.")
        elif maximum is not None and number > maximum:
            self.error(name, f"Number must be at most {maximum}.")
        return number


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(value)
        return int(value)
    return int(str(value).strip())


def _to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(value)
    number = float(value) if isinstance(value, int | float) else float(str(value).strip())
    if number != number or number in (float("inf"), float("-inf")):
        raise ValueError(value)
    return number


def submitted(values: Mapping[str, Any]) -> dict[str, str]:
    """The submitted fields as text (kept in the job for clone), without the username."""
    return {
        k: str(v)
        for k, v in values.items()
        if k != "username" and isinstance(v, str | int | float | bool | list)
    }


def _extra_folders(f: Fields) -> dict[str, Any]:
    """DIGITS's separate validation/test folders (`has_val_folder`, `folder_val`, min/max)."""
    out: dict[str, Any] = {}
    for split in ("val", "test"):
        has = f.boolean(f"has_{split}_folder", False)
        low = f.integer(f"folder_{split}_min_per_class", 2, 1)
        top = f.integer(f"folder_{split}_max_per_class", None, 1)
        if top is not None and low is not None and top < low:
            f.error(
                f"folder_{split}_max_per_class", f"Must be at least folder_{split}_min_per_class."
            )
        out.update(
            {
                f"has_{split}_folder": has,
                f"folder_{split}": f.text(f"folder_{split}", required=has) if has else "",
                f"folder_{split}_min_per_class": low or 2,
                f"folder_{split}_max_per_class": top,
            }
        )
    return out


# Dataset form fields that carry a file; the gateway puts each in the uploads bucket first.
DATASET_FILES = (
    "textfile_train_images",
    "textfile_val_images",
    "textfile_test_images",
    "textfile_labels_file",
    "upload_archive",
)


def _textfile_fields(f: Fields, method: str, blobs: Mapping[str, BlobRef]) -> dict[str, Any]:
    """DIGITS §1.3's textfile fields (lists uploaded as `blobs`, or server paths)."""
    if method != "textfile":
        return {}
    local = f.boolean("textfile_use_local_files", False)
    use = {
        "train": True,
        "val": f.boolean("textfile_use_val", True),
        "test": f.boolean("textfile_use_test", False),
    }
    out: dict[str, Any] = {
        "textfile_use_local_files": local,
        "textfile_use_val": use["val"],
        "textfile_use_test": use["test"],
        "textfile_shuffle": f.choice("textfile_shuffle", ("0", "1"), "1") == "1",
    }
    for split, wanted in use.items():
        out[f"textfile_{split}_folder"] = f.text(f"textfile_{split}_folder")
        if local:
            out[f"textfile_local_{split}_images"] = f.text(
                f"textfile_local_{split}_images", required=wanted
            )
        elif wanted and f"textfile_{split}_images" not in blobs:
            f.error(f"textfile_{split}_images", "This field is required.")
    if local:
        out["textfile_local_labels_file"] = f.text("textfile_local_labels_file", required=True)
    elif "textfile_labels_file" not in blobs:
        f.error("textfile_labels_file", "This field is required.")
    for name in (
        "textfile_train_images",
        "textfile_val_images",
        "textfile_test_images",
        "textfile_labels_file",
    ):
        if not local and name in blobs:
            out[name] = blobs[name]
    return out


def dataset_command(
    values: Mapping[str, Any], username: str, blobs: Mapping[str, BlobRef] | None = None
) -> CreateDataset:
    """CreateDataset from DIGITS's image-classification dataset form (§1)."""
    f = Fields(values)
    blobs = blobs or {}
    name = f.text("dataset_name", required=True)
    method = f.choice("method", ("folder", "textfile", "upload"), "folder")
    sources = _textfile_fields(f, method, blobs)
    if method == "upload":
        if "upload_archive" not in blobs:
            f.error("upload_archive", "This field is required.")
        sources["upload_archive"] = blobs.get("upload_archive")
    folder = f.text("folder_train", required=method == "folder")
    pct_val = f.integer("folder_pct_val", 25, 0, 100)
    pct_test = f.integer("folder_pct_test", 0, 0, 100)
    if pct_val is not None and pct_test is not None and pct_val + pct_test > 100:
        f.error("folder_pct_val", "folder_pct_val + folder_pct_test must be at most 100.")
    min_per_class = f.integer("folder_train_min_per_class", 2, 1)
    max_per_class = f.integer("folder_train_max_per_class", None, 1)
    if max_per_class is not None and min_per_class is not None and max_per_class < min_per_class:
        f.error("folder_train_max_per_class", "Must be at least folder_train_min_per_class.")
    extra = _extra_folders(f)
    # DIGITS's LMDB/HDF5 (and TFRecords) all become RecordIO, MXNet's own format.
    f.choice("backend", ("lmdb", "hdf5", "tfrecords", "recordio"), "lmdb")
    channels = f.integer("resize_channels", 3)
    if channels not in (1, 3):
        f.error("resize_channels", "Not a valid choice: 1 (grayscale) or 3 (color).")
    spec = DatasetSpec(
        method=method,
        folder_train=folder,
        folder_pct_val=pct_val if pct_val is not None else 25,
        folder_pct_test=pct_test if pct_test is not None else 0,
        folder_train_min_per_class=min_per_class or 2,
        folder_train_max_per_class=max_per_class,
        **extra,
        **sources,
        resize_width=f.integer("resize_width", 256, 1, 8192) or 256,
        resize_height=f.integer("resize_height", 256, 1, 8192) or 256,
        resize_channels=channels or 3,
        resize_mode=f.choice("resize_mode", ("crop", "squash", "fill", "half_crop"), "squash"),
        encoding=f.choice("encoding", ("none", "png", "jpg"), "png"),
        backend="recordio",
        compression=f.choice("compression", ("none", "gzip"), "none"),
    )
    group = f.text("group_name")
    f.check()
    return CreateDataset(
        name=name, username=username, group=group, spec=spec, form=submitted(values)
    )


def model_commands(
    values: Mapping[str, Any], username: str, dataset_ok: Callable[[str], bool]
) -> list[CreateModel]:
    """CreateModel(s) from DIGITS's model form (§2); a list of learning rates or batch sizes
    is a sweep: one job per combination, named like DIGITS's (` learning_rate:0.01`)."""
    f = Fields(values)
    dataset = f.text("dataset", required=True)
    if dataset and not dataset_ok(dataset):
        f.error("dataset", "Not a valid choice.")
    name = f.text("model_name", required=True)
    method = f.choice("method", ("standard", "previous", "pretrained", "custom"), "standard")
    network = f.text("standard_networks", "alexnet")
    custom = f.text("custom_network", required=method == "custom")
    previous = f.text("previous_networks", required=method == "previous")
    if method == "pretrained":  # a pretrained model's one snapshot (DIGITS's third tab)
        previous = f.text("pretrained_networks", required=True)
    # DIGITS's `<job_id>-snapshot` field: the epoch to start from (0 = that job's latest,
    # -1 = the weights that job itself started from, its "pretrained model").
    previous_snapshot = f.number(f"{previous}-snapshot", None, -1.0) if previous else None
    f.choice("framework", FRAMEWORKS, "mxnet")
    rates = f.numbers("learning_rate", [0.01], 0.0)
    batch_sizes: list[Any] = f.numbers("batch_size", [None], 1, integer=True)
    lr_policy = f.choice("lr_policy", LR_POLICIES, "step")
    multistep = f.text("lr_multistep_values", "50,85")
    if lr_policy == "multistep":
        f.numbers("lr_multistep_values", [], 0.0)
    gpus = f.numbers("select_gpus_list", [], 0, integer=True) or f.numbers(
        "select_gpus", [], 0, integer=True
    )
    single = f.text("select_gpu", "next")
    if not gpus and single != "next":
        gpus = f.numbers("select_gpu", [], 0, integer=True)
    base = dict(
        method=method,
        standard_network=network,
        custom_network=custom if method == "custom" else "",
        framework="mxnet",
        train_epochs=f.integer("train_epochs", 30, 1),
        snapshot_interval=f.number("snapshot_interval", 1.0, 0.0),
        val_interval=f.number("val_interval", 1.0, 0.0),
        random_seed=f.integer("random_seed", None, 0),
        batch_accumulation=f.integer("batch_accumulation", None, 1),
        solver_type=f.choice("solver_type", SOLVERS, "SGD"),
        momentum=f.number("momentum", 0.9, 0.0),
        weight_decay=f.number("weight_decay", None, 0.0),
        rms_decay=f.number("rms_decay", 0.99, 0.0),
        lr_policy=lr_policy,
        lr_step_size=f.number("lr_step_size", 33.0),
        lr_step_gamma=f.number("lr_step_gamma", 0.1),
        lr_multistep_values=multistep,
        lr_multistep_gamma=f.number("lr_multistep_gamma", 0.5),
        lr_exp_gamma=f.number("lr_exp_gamma", 0.95),
        lr_inv_gamma=f.number("lr_inv_gamma", 0.1),
        lr_inv_power=f.number("lr_inv_power", 0.5),
        lr_poly_power=f.number("lr_poly_power", 3.0),
        lr_sigmoid_step=f.number("lr_sigmoid_step", 50.0),
        lr_sigmoid_gamma=f.number("lr_sigmoid_gamma", 0.1),
        use_mean=f.choice("use_mean", ("none", "image", "pixel"), "image"),
        crop_size=f.integer("crop_size", None, 1),
        shuffle=f.boolean("shuffle", True),
        previous_network=previous if method in ("previous", "pretrained") else "",
        previous_snapshot=previous_snapshot if method == "previous" else None,
        aug_flip=f.choice("aug_flip", ("none", "fliplr", "flipud", "fliplrud"), "none"),
        aug_quad_rot=f.choice("aug_quad_rot", ("none", "rot90", "rot180", "rotall"), "none"),
        aug_rot=f.number("aug_rot", 0.0, 0.0, 180.0),
        aug_scale=f.number("aug_scale", 0.0, 0.0, 1.0),
        aug_noise=f.number("aug_noise", 0.0, 0.0, 1.0),
        aug_contrast=f.number("aug_contrast", 0.0, 0.0, 5.0),
        aug_whitening=f.boolean("aug_whitening", False),
        aug_hsv_use=f.boolean("aug_hsv_use", False),
        aug_hsv_h=f.number("aug_hsv_h", 0.02, 0.0, 0.5),
        aug_hsv_s=f.number("aug_hsv_s", 0.04, 0.0, 0.5),
        aug_hsv_v=f.number("aug_hsv_v", 0.06, 0.0, 0.5),
        early_stopping_patience=f.integer("early_stopping_patience", 0, 0),
        snapshot_keep=f.integer("snapshot_keep", 0, 0),
        select_gpu_count=f.integer("select_gpu_count", 1, 1),
        priority=f.integer("priority", 0, -100, 100),
        select_gpus=gpus,
    )
    group = f.text("group_name")
    f.check()
    if not group and len(rates) * len(batch_sizes) > 1:
        group = name  # a sweep's jobs stay together on the home page
    commands = []
    for rate, batch in itertools.product(rates, batch_sizes):
        suffix = f" learning_rate:{rate}" if len(rates) > 1 else ""
        suffix += f" batch_size:{batch}" if len(batch_sizes) > 1 else ""
        spec = TrainSpec(**base, learning_rate=rate, batch_size=batch)  # type: ignore[arg-type]
        commands.append(
            CreateModel(
                name=name + suffix,
                username=username,
                group=group,
                dataset_id=dataset,
                spec=spec,
                form=submitted(values),
            )
        )
    return commands
