"""`python -m digits_proto.catalogue [DIR]` (what `make schema` runs): write the catalogue."""

import sys
from pathlib import Path

from digits_proto.catalogue import write

written = write(Path(sys.argv[1] if len(sys.argv) > 1 else "proto/schema"))
sys.stdout.write(f"{len(written)} files written\n")
