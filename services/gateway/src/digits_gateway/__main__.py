"""`python -m digits_gateway`: settings → logging → serve on uvloop."""

from __future__ import annotations

import sys

import uvloop

from digits_gateway import app
from digits_gateway.settings import get_settings
from digits_proto.runtime import configure_logging


def main() -> None:
    """Run the gateway until signalled."""
    settings = get_settings()
    configure_logging("gateway", settings.log_level)
    sys.exit(uvloop.run(app.main(settings)))


if __name__ == "__main__":
    main()
