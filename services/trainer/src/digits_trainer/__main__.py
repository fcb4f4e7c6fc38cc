"""`python -m digits_trainer`: start the trainer service."""

from __future__ import annotations

import asyncio

from digits_proto.runtime import configure_logging
from digits_trainer import app
from digits_trainer.settings import get_settings


def main() -> None:
    """Read the settings, set up logging, run until SIGTERM."""
    settings = get_settings()
    configure_logging("trainer", settings.log_level)
    asyncio.run(app.main(settings))


if __name__ == "__main__":
    main()
