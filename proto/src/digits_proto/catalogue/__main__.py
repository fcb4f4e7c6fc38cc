"""`python -m digits_proto.catalogue [DIR]` (what `make schema` runs): write the catalogue."""

import argparse
import sys
from pathlib import Path

from digits_proto.catalogue import write


def main() -> None:
    """Parse the arguments and write the files."""
    parser = argparse.ArgumentParser(
        prog="python -m digits_proto.catalogue",
        description="Write the event catalogue: asyncapi.yaml and messages/<Type>.json.",
    )
    parser.add_argument("dir", nargs="?", default="proto/schema", help="default proto/schema")
    written = write(Path(parser.parse_args().dir))
    sys.stdout.write(f"{len(written)} files written\n")


# Imported (a walk of the package's modules does) it writes nothing.
if __name__ == "__main__":
    main()
