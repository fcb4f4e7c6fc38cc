"""`digits run`: the whole system on this machine. `digits --help` lists the verbs."""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

import msgspec

from digits_cli import backup, commands, consumers, nats
from digits_cli.launcher import Launcher
from digits_cli.settings import get_settings
from digits_proto.runtime import credentials_for


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
        settings = get_settings()
        if args.cluster is not None:
            settings = msgspec.structs.replace(settings, cluster=args.cluster)
        return Launcher(settings).run()
    if args.verb == "nats-config":
        folder = Path(args.creds or Path(get_settings().data_path) / "nats" / "creds")
        text = nats.render_config(nats.credentials(folder), args.listen, args.store)
        if args.out:
            nats.write_private(Path(args.out), text.encode())
        else:
            sys.stdout.write(text)
        return 0
    if args.verb == "nats-provision":
        url = get_settings().nats_url or "nats://127.0.0.1:4222"
        admin = credentials_for(nats.ADMIN)
        if admin is None or admin.user != nats.ADMIN:
            raise SystemExit("DIGITS_NATS_CREDS must name digits-admin's credentials")
        nats.provision(url, admin)
        return 0
    return 2


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
