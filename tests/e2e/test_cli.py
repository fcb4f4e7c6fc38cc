"""The `digits` command line against the launched system: log in, upload a local folder as a
dataset, train with a live progress bar in a pseudo-terminal, classify, download, Ctrl-C and
abort, and the exit codes of a wrong token, an unreachable server and a bad flag."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import stat
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import pytest

from tests.e2e.conftest import USER_PASSWORD, System, signed_in, write_intensity_classes

pytestmark = pytest.mark.e2e

USER = "cli-user"


def digits(
    env: dict[str, str], *args: str, stdin: str = "", timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    """`digits ARGS` as a user would run it (a new process), its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "digits_cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def in_terminal(env: dict[str, str], *args: str, until: str = "", interrupt: bool = False):
    """`digits ARGS` on a pseudo-terminal: (exit code, everything it drew). With `interrupt`,
    Ctrl-C (SIGINT) once `until` has been drawn."""
    main, child = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "digits_cli", *args],
        stdin=child,
        stdout=child,
        stderr=child,
        env={**env, "TERM": "xterm-256color", "COLUMNS": "140"},
        close_fds=True,
    )
    os.close(child)
    drawn, sent = b"", False
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        ready, _, _ = select.select([main], [], [], 0.2)
        if ready:
            try:
                data = os.read(main, 65536)
            except OSError:  # the child closed the terminal
                data = b""
            if not data and proc.poll() is not None:
                break
            drawn += data
        elif proc.poll() is not None:
            break
        if interrupt and not sent and until.encode() in drawn:
            proc.send_signal(signal.SIGINT)
            sent = True
    os.close(main)
    return proc.wait(timeout=30), drawn.decode(errors="replace")


@pytest.fixture(scope="module")
def env(digits_system: System, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A user's environment: their own config folder, logged in through `digits login`."""
    with signed_in(digits_system, USER):
        pass  # opens the account
    config_home = tmp_path_factory.mktemp("xdg")
    base = {k: v for k, v in os.environ.items() if k not in ("DIGITS_URL", "DIGITS_TOKEN")}
    base["XDG_CONFIG_HOME"] = str(config_home)
    r = digits(
        base,
        "login",
        digits_system.url,
        "--username",
        USER,
        "--password-stdin",
        stdin=USER_PASSWORD + "\n",
    )
    assert r.returncode == 0, r.stderr
    return base


@pytest.fixture(scope="module")
def dataset(env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A dataset made from a LOCAL folder (uploaded by the CLI), followed until built."""
    folder = tmp_path_factory.mktemp("local") / "shades"
    write_intensity_classes(folder, per_class=30)
    r = digits(
        env,
        "datasets",
        "create",
        str(folder),
        "--name",
        "shades",
        "--width",
        "28",
        "--height",
        "28",
        "--channels",
        "1",
        "--pct-val",
        "20",
        "--json",
    )
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.fixture(scope="module")
def model(env: dict[str, str], dataset: dict) -> tuple[int, str, dict]:
    """LeNet trained (as the browser flow trains it: 4 epochs of SGD, seed 1; 2 epochs of ADAM
    once left a bright image classified mid) while the CLI draws its progress on a terminal; (exit code,
    what it drew, the model's JSON read afterwards with --json)."""
    code, drawn = in_terminal(
        env,
        "train",
        "--dataset",
        dataset["id"],
        "--network",
        "lenet",
        "--epochs",
        "4",
        "--batch-size",
        "16",
        "--solver",
        "SGD",
        "--learning-rate",
        "0.01",
        "--lr-policy",
        "fixed",
        "--seed",
        "1",
        "--name",
        "shades-lenet",
    )
    model_id = drawn.split("model ", 1)[1].split(" ", 1)[0]
    shown = digits(env, "jobs", "show", model_id, "--json")
    assert shown.returncode == 0, shown.stderr
    return code, drawn, json.loads(shown.stdout)


def test_login_keeps_the_token_owner_only(env: dict[str, str], digits_system: System) -> None:
    """The config file is 0600 in a 0700 folder, and `whoami` acts as the user who logged in."""
    path = Path(env["XDG_CONFIG_HOME"]) / "digits" / "config.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert json.loads(path.read_text())["url"] == digits_system.url
    r = digits(env, "whoami", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["username"] == USER, r.stderr


def test_a_local_folder_uploads_and_builds(dataset: dict) -> None:
    """The uploaded folder's three classes are built into train and val splits."""
    assert dataset["status"] == "Done", dataset
    assert sorted(dataset["labels"]) == ["bright", "dark", "mid"]
    entries = {t["split"]: t["entries"] for t in dataset["CreateDbTasks"]}
    assert entries["train"] + entries["val"] == 90 and entries["val"] > 0


def test_train_draws_live_progress_and_ends_done(model: tuple[int, str, dict]) -> None:
    """Exit 0; the terminal saw the bar with epochs and the loss; the model is Done at epoch 4
    with the last three epochs' snapshots (the default retention: last 3 + best)."""
    code, drawn, job = model
    assert code == 0, drawn[-2000:]
    assert "━" in drawn and "epoch" in drawn and "loss" in drawn, drawn[-2000:]
    assert "\x1b[" in drawn  # redrawn in place: a terminal, not a log
    assert (
        job["status"] == "Done" and job["epoch"] == 4 and job["snapshots"][-3:] == [2.0, 3.0, 4.0]
    )


def test_classify_and_download(
    env: dict[str, str], model: tuple[int, str, dict], tmp_path: Path
) -> None:
    """A bright image is classified bright (top-1 of the JSON); a zip of one image per class
    runs as a classify-many job with its accuracy; the downloaded archive holds the snapshot's
    weights and the labels."""
    write_intensity_classes(tmp_path / "probe", per_class=1)
    image = tmp_path / "probe" / "bright" / "bright_000.png"
    r = digits(env, "classify", model[2]["id"], str(image), "--json")
    assert r.returncode == 0, r.stderr
    (result,) = json.loads(r.stdout)["results"]
    assert result["predictions"][0][0] == "bright", result
    with zipfile.ZipFile(tmp_path / "probe.zip", "w") as archive:
        for label in ("dark", "mid", "bright"):
            archive.write(tmp_path / "probe" / label / f"{label}_000.png", f"{label}/{label}.png")
    r = digits(env, "classify", model[2]["id"], str(tmp_path / "probe.zip"), "--json")
    assert r.returncode == 0, r.stderr
    many = json.loads(r.stdout)
    assert {x["path"] for x in many["results"]} == {
        "dark/dark.png",
        "mid/mid.png",
        "bright/bright.png",
    }
    assert many["top1_accuracy"] is not None, many
    r = digits(env, "download", model[2]["id"], "--epoch", "4", "-o", str(tmp_path), "--json")
    assert r.returncode == 0, r.stderr
    with tarfile.open(json.loads(r.stdout)["path"]) as archive:
        names = archive.getnames()
    assert "labels.txt" in names and any(n.endswith(".params") for n in names), names


def test_ctrl_c_leaves_the_job_running_and_abort_stops_it(
    env: dict[str, str], dataset: dict
) -> None:
    """Ctrl-C while following: exit 130 with the abort command printed, the job still going;
    `jobs abort` stops it and following it then exits 1 (Aborted)."""
    code, drawn = in_terminal(
        env,
        "train",
        "--dataset",
        dataset["id"],
        "--epochs",
        "200",
        "--name",
        "long",
        until="━",
        interrupt=True,
    )
    assert code == 130, drawn[-2000:]
    model_id = drawn.split("model ", 1)[1].split(" ", 1)[0]
    assert f"digits jobs abort {model_id}" in drawn
    status = json.loads(digits(env, "jobs", "show", model_id, "--json").stdout)["status"]
    assert status not in ("Done", "Error", "Aborted"), status
    assert digits(env, "jobs", "abort", model_id).returncode == 0
    r = digits(env, "jobs", "show", model_id, "--follow", "--json")
    assert r.returncode == 1 and json.loads(r.stdout)["status"] == "Aborted", r.stderr


def test_clone_replays_the_settings_and_delete_removes_the_job(
    env: dict[str, str], model: tuple[int, str, dict]
) -> None:
    """A clone under a new name trains with the source's network and epochs; aborted, then
    deleted, it is gone (`jobs show` exits 2)."""
    r = digits(env, "jobs", "clone", model[2]["id"], "--name", "shades-again", "--json")
    assert r.returncode == 0, r.stderr
    clone = json.loads(r.stdout)
    assert clone["id"] != model[2]["id"] and clone["name"] == "shades-again"
    copy = json.loads(digits(env, "jobs", "show", clone["id"], "--json").stdout)
    assert (copy["network"], copy["train_epochs"]) == ("lenet", 4)
    digits(env, "jobs", "abort", clone["id"])  # it may have ended already: either way it ends
    ended = digits(env, "jobs", "show", clone["id"], "--follow", "--json")
    assert json.loads(ended.stdout)["status"] in ("Aborted", "Done"), ended.stderr
    assert digits(env, "jobs", "delete", clone["id"]).returncode == 0
    r = digits(env, "jobs", "show", clone["id"])
    assert r.returncode == 2 and clone["id"] in r.stderr, r.stderr


def test_jobs_list_and_events_name_the_jobs(env: dict[str, str], dataset: dict) -> None:
    """`jobs list --json` lists the dataset; `events --job` prints its events as JSON lines."""
    r = digits(env, "jobs", "list", "--json")
    assert r.returncode == 0 and dataset["id"] in {j["id"] for j in json.loads(r.stdout)}
    r = digits(env, "events", "--job", dataset["id"], "--json")
    assert r.returncode == 0, r.stderr
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert lines and dataset["id"] in json.dumps(lines)


def test_a_wrong_token_is_refused_with_exit_3(env: dict[str, str]) -> None:
    """DIGITS_TOKEN overrides the stored one: a wrong one is a 401, one line, exit 3."""
    r = digits({**env, "DIGITS_TOKEN": "not-a-token"}, "jobs", "list")
    assert r.returncode == 3 and "401" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_an_unreachable_server_exits_3_and_a_bad_flag_exits_2(env: dict[str, str]) -> None:
    """Nothing listening: one line, exit 3. An unknown flag: argparse's usage, exit 2."""
    r = digits({**env, "DIGITS_URL": "http://127.0.0.1:9"}, "datasets", "list")
    assert r.returncode == 3 and "does not answer" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    r = digits(env, "train", "--dataset", "x", "--epochs", "many")
    assert r.returncode == 2 and "--epochs" in r.stderr, r.stderr


def test_a_missing_dataset_is_a_usage_error_naming_the_field(env: dict[str, str]) -> None:
    """Training on an unknown dataset: the server's 400 names `dataset_id`, exit 2."""
    r = digits(env, "train", "--dataset", "no-such-dataset", "--epochs", "1")
    assert r.returncode == 2 and "dataset" in r.stderr, r.stderr
