"""`python -m digits_datasets`: read settings, configure logging, run the service."""

from __future__ import annotations

import asyncio

from digits_datasets.settings import get_settings
from digits_proto.runtime import configure_logging


def main() -> None:
    """Entry point of the `digits-datasets` process."""
    # Imported here: spawned build workers re-import this module and need none of the service.
    from digits_datasets import app

    settings = get_settings()
    configure_logging("datasets", settings.log_level)
    asyncio.run(app.main(settings))


if __name__ == "__main__":
    main()
