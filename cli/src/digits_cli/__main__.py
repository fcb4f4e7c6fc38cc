"""`digits run`: the whole system on this machine. `digits --help` lists the verbs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from digits_cli import nats
from digits_cli.launcher import Launcher
from digits_cli.settings import get_settings
from digits_proto.runtime import credentials_for


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the chosen verb."""
    parser = argparse.ArgumentParser(prog="digits", description="DIGITS, reborn")
    verbs = parser.add_subparsers(dest="verb", required=True)
    verbs.add_parser("run", help="start nats-server and every service; Ctrl-C stops them")
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
    args = parser.parse_args(argv)
    if args.verb == "run":
        return Launcher(get_settings()).run()
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


if __name__ == "__main__":
    sys.exit(main())
