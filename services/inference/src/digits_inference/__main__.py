"""`python -m digits_inference`: read settings, configure logging, run the service."""

from __future__ import annotations

import asyncio

from digits_inference.settings import apply_thread_limits, get_settings
from digits_proto import subjects
from digits_proto.runtime import configure_logging


def main() -> None:
    """Entry point (also the `digits-inference` console script)."""
    settings = get_settings()
    apply_thread_limits(settings)  # before MXNet loads: its OpenMP pool is sized at import
    configure_logging(subjects.SERVICE_INFERENCE, settings.log_level)
    from digits_inference import app

    asyncio.run(app.main(settings))


if __name__ == "__main__":
    main()
