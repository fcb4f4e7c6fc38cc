"""`python -m digits_gpu_broker`: read settings, configure logging, run the broker."""

from __future__ import annotations

import asyncio

from digits_gpu_broker import app
from digits_gpu_broker.settings import get_settings
from digits_proto import subjects
from digits_proto.runtime import configure_logging


def main() -> None:
    """Entry point of the gpu-broker process."""
    settings = get_settings()
    configure_logging(subjects.SERVICE_GPU_BROKER, settings.log_level)
    asyncio.run(app.main(settings))


if __name__ == "__main__":
    main()
