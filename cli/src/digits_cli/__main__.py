"""`digits run`: the whole system on this machine. `digits --help` lists the verbs."""

from __future__ import annotations

import argparse
import sys

from digits_cli.launcher import Launcher
from digits_cli.settings import get_settings


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the chosen verb."""
    parser = argparse.ArgumentParser(prog="digits", description="DIGITS, reborn")
    verbs = parser.add_subparsers(dest="verb", required=True)
    verbs.add_parser("run", help="start nats-server and every service; Ctrl-C stops them")
    args = parser.parse_args(argv)
    if args.verb == "run":
        return Launcher(get_settings()).run()
    return 2


if __name__ == "__main__":
    sys.exit(main())
