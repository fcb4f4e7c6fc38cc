"""`python -m digits_gateway`: settings → logging → serve on uvloop."""

from __future__ import annotations

import gc
import os
import sys

import uvloop

from digits_gateway import app
from digits_gateway.settings import get_settings
from digits_proto.runtime import check_writable, configure_logging


def main() -> None:
    """Run the gateway until signalled."""
    settings = get_settings()
    os.umask(0o077)  # the read model, secrets and logs are the owner's alone (ServiceHost's rule)
    check_writable(settings.data_dir)  # read-only or full: one line and exit 1, no traceback
    configure_logging("gateway", settings.log_level)
    # The imported modules (Litestar, Jinja, DuckDB, nats…) stay for the process's life: frozen,
    # a full collection no longer walks them again (~17 ms each; a classify-many reply alone
    # allocates enough objects to trigger collections).
    gc.freeze()
    sys.exit(uvloop.run(app.main(settings)))


if __name__ == "__main__":
    main()
