"""compose.yaml runs the same system as containers: a 3-node NATS cluster (R3), the control
services and a scalable `node` (trainer + gpu-broker). No Docker here: the structure is checked,
and the configs its nats-auth step writes are rendered and checked by nats-server itself."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from digits_cli import nats as embedded
from digits_cli.__main__ import main
from digits_cli.launcher import SERVICES

ROOT = Path(__file__).resolve().parents[2]
NATS_NODES = ["nats-1", "nats-2", "nats-3"]
CONTROL = ["gateway", "datasets", "inference"]


def compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def test_compose_names_a_nats_cluster_the_control_services_and_a_scalable_node() -> None:
    services = compose()["services"]
    assert set(services) == {"nats-auth", *NATS_NODES, "nats-provision", *CONTROL, "node"}
    # Every DIGITS service of the launcher runs exactly once: control here, the rest per node.
    node_command = services["node"]["command"]
    assert node_command[:5] == ["python", "-m", "digits_cli", "run", "--only"]
    on_node = node_command[5].split(",")
    assert sorted([*CONTROL, *on_node]) == sorted(SERVICES)
    assert set(on_node) == {"trainer", "gpu-broker"}
    every_node = ",".join(f"nats://{name}:4222" for name in NATS_NODES)
    for name in [*CONTROL, "node", "nats-provision"]:
        env = services[name]["environment"]
        assert env["DIGITS_NATS_URL"] == every_node, name
        assert int(env["DIGITS_NATS_REPLICAS"]) == len(NATS_NODES) == 3, name
    for name in [*CONTROL, "node"]:
        env = services[name]["environment"]
        assert env["DIGITS_DATA_DIR"] == "/data"
        assert "/data" not in env["DIGITS_DATA_ROOTS"].split(":")  # never the data directory
        # One node id per container (its hostname): the trainer and its broker agree on it.
        assert "DIGITS_NODE_ID" not in env, name
    for name in CONTROL:  # each connects as itself
        env = services[name]["environment"]
        assert env["DIGITS_NATS_CREDS"] == f"/auth/creds/digits-{name}.json"
        module = "digits_" + name.replace("-", "_")
        assert services[name]["command"] == ["python", "-m", module]
    # The node's launcher hands each of its services its own file from the folder.
    assert services["node"]["environment"]["DIGITS_NATS_CREDS"] == "/auth/creds"
    assert services["node"]["environment"]["DIGITS_LAUNCHER_LOG_TO_TERMINAL"] == "true"
    deploy = services["node"]["deploy"]
    assert deploy["replicas"] >= 1 and "container_name" not in services["node"]  # scalable
    devices = deploy["resources"]["reservations"]["devices"]
    assert set(devices[0]["capabilities"]) == {"gpu", "utility"}
    assert "ports" not in services["node"]  # N replicas cannot share a published port


def test_each_nats_node_has_its_own_store_and_config_and_provisioning_waits_for_all() -> None:
    services = compose()["services"]
    volumes = compose()["volumes"]
    stores = set()
    for name in NATS_NODES:
        node = services[name]
        assert node["command"][:2] == ["-c", f"/auth/{name}.conf"]
        store = next(v.split(":")[0] for v in node["volumes"] if v.split(":")[1] == "/data")
        assert store in volumes
        stores.add(store)
        assert node["depends_on"]["nats-auth"]["condition"] == "service_completed_successfully"
    assert len(stores) == len(NATS_NODES)
    assert set(services["nats-provision"]["depends_on"]) == set(NATS_NODES)
    # Exit 78 (needs an operator) must not loop: a bounded retry only.
    assert services["nats-provision"]["restart"].startswith("on-failure:")
    for name in [*CONTROL, "node"]:
        provisioned = services[name]["depends_on"]["nats-provision"]["condition"]
        assert provisioned == "service_completed_successfully"


def _render(tmp_path: Path) -> dict[str, dict]:
    """Run the nats-auth step's own command line (paths moved into tmp); the configs by node."""
    command = compose()["services"]["nats-auth"]["command"]
    assert command[:3] == ["python", "-m", "digits_cli"]
    args = [a.replace("/auth", str(tmp_path / "auth")) for a in command[3:]]
    args = [a.replace("/data", str(tmp_path / "data")) for a in args]
    (tmp_path / "auth").mkdir(exist_ok=True)
    assert main(args) == 0
    return {
        name: json.loads((tmp_path / "auth" / f"{name}.conf").read_text()) for name in NATS_NODES
    }


def test_the_nats_configs_form_one_cluster_whose_routes_are_consistent(tmp_path: Path) -> None:
    """Each node: named after its compose service, routes to every node on the route port it
    listens on, with the credentials every node requires; nats-server accepts each config."""
    configs = _render(tmp_path)
    route = embedded.route_credentials(tmp_path / "auth" / "creds")
    expected = [f"nats-route://{route.user}:{route.password}@{name}:6222" for name in NATS_NODES]
    for name, config in configs.items():
        assert config["server_name"] == name
        assert config["listen"] == "0.0.0.0:4222"
        cluster = config["cluster"]
        assert cluster["name"] == "digits" and cluster["listen"] == "0.0.0.0:6222"
        assert cluster["routes"] == expected
        assert cluster["authorization"] == {"user": route.user, "password": route.password}
        assert config["jetstream"]["store_dir"] == str(tmp_path / "data" / "jetstream")
        users = {u["user"] for u in config["authorization"]["users"]}
        assert {embedded.ADMIN, "digits-gateway", "digits-trainer"} <= users
        checked = subprocess.run(
            [embedded.binary(), "-c", str(tmp_path / "auth" / f"{name}.conf"), "-t"],
            capture_output=True,
            text=True,
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr
    assert {c["cluster"]["name"] for c in configs.values()} == {"digits"}
    file = tmp_path / "auth" / "creds" / "digits-route.json"
    assert file.stat().st_mode & 0o077 == 0
    # nats-auth runs again on every `compose up`: the same secret, or a restarted node is shut out.
    again = _render(tmp_path)
    assert again["nats-1"]["cluster"]["routes"] == expected


def test_nats_config_for_a_cluster_needs_one_file_per_node(tmp_path: Path) -> None:
    args = ["nats-config", "--creds", str(tmp_path / "creds"), "--cluster", "a,b,c"]
    with pytest.raises(SystemExit, match=r"\{node\}"):
        main([*args, "--out", str(tmp_path / "one.conf")])
