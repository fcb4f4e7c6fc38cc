"""`python -m digits_inference`: read settings, configure logging, run the service."""

from __future__ import annotations

import asyncio
import gc

from digits_inference.settings import apply_thread_limits, get_settings
from digits_proto import subjects
from digits_proto.runtime import configure_logging


def main() -> None:
    """Entry point (also the `digits-inference` console script)."""
    settings = get_settings()
    apply_thread_limits(settings)  # before MXNet loads: its OpenMP pool is sized at import
    configure_logging(subjects.SERVICE_INFERENCE, settings.log_level)
    from digits_inference import app

    # The imported modules (MXNet, NumPy, Pillow, nats…, ~100k objects) stay for the process's
    # life: frozen, a full collection no longer walks them again (~35 ms each; a classify-many
    # of 2,000 images allocates enough objects to trigger collections).
    gc.freeze()
    asyncio.run(app.main(settings))


if __name__ == "__main__":
    main()
