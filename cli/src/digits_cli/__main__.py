"""`digits run`: the whole system on this machine. `digits --help` lists the verbs."""

from __future__ import annotations

import argparse
import asyncio
import sys
import textwrap
from pathlib import Path

import msgspec

from digits_cli import backup, commands, consumers, nats
from digits_cli.bus import until_jetstream
from digits_cli.launcher import SERVICES, Launcher
from digits_cli.settings import get_settings
from digits_proto.runtime import EXIT_NEEDS_OPERATOR, NeedsOperator, credentials_for


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the chosen verb."""
    parser = argparse.ArgumentParser(prog="digits", description="DIGITS, reborn")
    verbs = parser.add_subparsers(dest="verb", required=True)
    run = verbs.add_parser("run", help="start nats-server and every service; Ctrl-C stops them")
    run.add_argument(
        "--cluster",
        type=int,
        metavar="N",
        help="N clustered nats-servers on loopback (N >= 3), every stream and bucket replicated "
        "3 times (DIGITS_NATS_CLUSTER; DIGITS_NATS_REPLICAS changes the count)",
    )
    run.add_argument(
        "--only",
        metavar="SERVICES",
        help="a node of a larger system: only these services (comma-separated, e.g. "
        "trainer,gpu-broker) on DIGITS_NATS_URL, supervised; nothing provisioned",
    )
    config = verbs.add_parser(
        "nats-config",
        help="print a nats-server config with one user per service and its permissions",
        description="For an external NATS: creates the credentials folder if needed (one "
        "<service>.json per service plus digits-admin.json, files 0600) and prints the server "
        "config holding their bcrypt hashes and the permission table. Give each service "
        "DIGITS_NATS_CREDS=<folder>/<service>.json, run `digits nats-provision` once as admin.",
    )
    config.add_argument("--creds", help="credentials folder (default: <data dir>/nats/creds)")
    config.add_argument("--listen", default="0.0.0.0:4222", help="host:port the server listens on")
    config.add_argument("--store", default="/data/jetstream", help="the JetStream store folder")
    config.add_argument("--out", help="write the config to this file (0600) instead of stdout")
    config.add_argument(
        "--cluster",
        metavar="HOSTS",
        help="the nodes of a NATS cluster, comma-separated (compose: nats-1,nats-2,nats-3): one "
        "config per node, named by --out with {node} in it; the route secret is kept in the "
        "credentials folder (digits-route.json)",
    )
    config.add_argument("--route-port", type=int, default=6222, help="the cluster's route port")
    verbs.add_parser(
        "nats-provision",
        help="create or update every stream and bucket, as digits-admin (DIGITS_NATS_URL, "
        "DIGITS_NATS_CREDS: the admin's file or the credentials folder)",
    )
    _backup_verbs(verbs)
    consumers.add_verb(verbs)
    commands.register(verbs)
    args = parser.parse_args(argv)
    if (code := commands.run(args)) is not None:
        return code
    if args.verb == "consumer-creds":
        return consumers.run(get_settings(), args)
    if args.verb == "backup":
        return backup.backup(get_settings(), Path(args.dir))
    if args.verb == "restore":
        return backup.restore(get_settings(), Path(args.dir), args.force)
    if args.verb == "run":
        return _run(args)
    if args.verb == "nats-config":
        return _nats_config(args)
    if args.verb == "nats-provision":
        url = get_settings().nats_url or "nats://127.0.0.1:4222"
        admin = credentials_for(nats.ADMIN)
        if admin is None or admin.user != nats.ADMIN:
            raise SystemExit("DIGITS_NATS_CREDS must name digits-admin's credentials")
        asyncio.run(until_jetstream(url, admin))  # a cluster started with us elects a leader
        try:
            nats.provision(url, admin)
        except NeedsOperator as e:
            sys.stderr.write(f"nats-provision: {e}\n")
            return EXIT_NEEDS_OPERATOR
        return 0
    return 2


def _run(args: argparse.Namespace) -> int:
    """`digits run [--cluster N | --only SERVICES]`."""
    settings = get_settings()
    if args.cluster is not None:
        settings = msgspec.structs.replace(settings, cluster=args.cluster)
    if not args.only:
        return Launcher(settings).run()
    names = [name.strip() for name in args.only.split(",") if name.strip()]
    if unknown := sorted(set(names) - set(SERVICES)):
        raise SystemExit(f"--only: no service {', '.join(unknown)} (one of {', '.join(SERVICES)})")
    if not settings.nats_url:
        raise SystemExit("--only runs part of a system: DIGITS_NATS_URL must name its NATS")
    return Launcher(settings, modules=dict.fromkeys(names, ""), part=True).run()


def _nats_config(args: argparse.Namespace) -> int:
    """One server config (stdout or --out), or one per node of a cluster (--cluster)."""
    folder = Path(args.creds or Path(get_settings().data_path) / "nats" / "creds")
    users = nats.credentials(folder)
    if not args.cluster:
        text = nats.render_config(users, args.listen, args.store)
        if args.out:
            nats.write_private(Path(args.out), text.encode())
        else:
            sys.stdout.write(text)
        return 0
    if not args.out or "{node}" not in args.out:
        raise SystemExit("nats-config --cluster: --out must hold {node}, e.g. /auth/{node}.conf")
    hosts = [host.strip() for host in args.cluster.split(",") if host.strip()]
    route = nats.route_credentials(folder)
    authz = nats.authorization(users)  # hashed once: every node has the same users
    for peer in nats.host_peers(hosts, args.route_port, route.password):
        text = nats.config_text(authz, args.listen, args.store, cluster=peer)
        nats.write_private(Path(args.out.replace("{node}", peer.server_name)), text.encode())
    return 0


WHICH_NATS = (
    "It works on DIGITS_NATS_URL as digits-admin (DIGITS_NATS_CREDS) when set, else on the "
    "embedded nats-server of DIGITS_DATA_DIR (default ./data): the running one, or, when the "
    "system is stopped, one it starts for the time it needs."
)


def _paragraphs(*texts: str) -> str:
    return "\n\n".join(textwrap.fill(t, 88) for t in texts)


def _backup_verbs(verbs: argparse._SubParsersAction) -> None:
    """`digits backup DIR` and `digits restore DIR [--force]`."""
    fmt = argparse.RawDescriptionHelpFormatter
    saving = verbs.add_parser(
        "backup",
        help="save every stream, KV and Object Store bucket into a new folder",
        formatter_class=fmt,
        description=_paragraphs(
            "Save every stream of the system (events, metrics, work queue, the KV and Object "
            "Store buckets: datasets, models, snapshots, users) into DIR with JetStream's own "
            "snapshots, which keep every message's sequence. DIR must be new or empty; it gets "
            "one <stream>.tar.s2 per stream and manifest.json (written last, with each file's "
            "SHA-256). The system may run meanwhile; a backup of a stopped or quiet system (no "
            "job running) is the consistent one. The read model is not saved: it is rebuilt "
            "from the streams.",
            WHICH_NATS,
        ),
    )
    saving.add_argument("dir", help="a new or empty folder (made 0700: it holds everything)")
    loading = verbs.add_parser(
        "restore",
        help="load a backup into a stopped system (refuses a non-empty one without --force)",
        formatter_class=fmt,
        description=_paragraphs(
            "Load the backup in DIR into a stopped system, every stream with the sequences it "
            "had, then delete the gateway's read model so that the next `digits run` rebuilds "
            "it. Each file is checked against the manifest before anything is changed. A system "
            "whose streams hold messages is refused unless --force (its streams are then "
            "replaced). Steps: stop the system; `digits restore DIR` (a wiped or new "
            "DIGITS_DATA_DIR is fine); `digits run`. Users may have to sign in again: sessions "
            "are not part of a backup.",
            WHICH_NATS,
        ),
    )
    loading.add_argument("dir", help="a folder written by `digits backup`")
    loading.add_argument(
        "--force", action="store_true", help="replace the streams of a system that holds messages"
    )


if __name__ == "__main__":
    sys.exit(main())
