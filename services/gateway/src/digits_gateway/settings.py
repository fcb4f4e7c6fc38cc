"""Gateway settings from `DIGITS_GATEWAY_*` (and the shared `DIGITS_*`) environment variables."""

from __future__ import annotations

import functools
from pathlib import Path

import msgspec

from digits_proto.runtime import env_settings


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the gateway reads from its environment; tests build it directly."""

    nats_url: str = "nats://127.0.0.1:4222"
    data_dir: str = "./data"
    data_roots: list[str] = []  # where `image_path` may point (classify_one on a server path)
    log_level: str = "info"
    host: str = "127.0.0.1"  # 0.0.0.0 is a deliberate choice (README: exposure)
    port: int = 5000  # DIGITS_PORT: DIGITS's own default
    web_dir: str = ""  # empty: the repository's web/ found next to the package
    ready_interval: float = 3.0  # seconds between pings of the backend services
    command_timeout: float = (
        30.0  # seconds a service has to answer (custom networks are test-built)
    )
    read_your_writes_timeout: float = 5.0  # seconds to wait for the projection, then 503
    keepalive_seconds: float = 15.0  # SSE comment interval
    fetch_batch: int = 500  # events per projection transaction
    duckdb_memory: str = "1GB"  # read model buffer pool cap (DuckDB alone: 80 % of RAM)
    inline_image_limit: int = 700_000  # bigger classify uploads travel through the Object Store
    max_upload_bytes: int = 64 * 1024 * 1024
    # Chunked uploads (/api/v1/uploads): what one user may hold not yet used by a job, the
    # bytes one PATCH may carry, the free space they must leave on the data disk (the floor the
    # datasets service's unpacking keeps), and how long an untouched upload is kept.
    upload_quota_bytes: int = 20 * 1024**3
    upload_chunk_bytes: int = 16 * 1024**2
    upload_min_free_bytes: int = 1024**3
    upload_expiry_hours: float = 24.0
    # DIGITS_ALLOWED_HOSTS: Host names answered, comma-separated; empty: loopback + bind address
    allowed_hosts: str = ""
    csrf_secret: str = ""  # empty: generated at first start, kept in <data_dir>/gateway/
    rate_limit_per_minute: int = 1200  # per account (per address when anonymous)
    sign_in_rate_limit_per_minute: int = 30  # POST /login and /api/v1/session, per address
    admin_password: str = ""  # DIGITS_ADMIN_PASSWORD: the first admin's; unset: a one-time link
    session_hours: float = 72.0  # a sign-in lasts this long (then sign in again)
    secure_cookies: bool = False  # set when served over HTTPS (behind a TLS proxy)
    password_min_length: int = 8
    login_delay_base: float = 0.1  # seconds; doubles with each failure (per name and address)
    login_delay_max: float = 5.0

    @property
    def readmodel_path(self) -> Path:
        """The DuckDB file this process alone owns."""
        return Path(self.data_dir) / "gateway" / "readmodel.duckdb"

    @property
    def session_key_path(self) -> Path:
        """The key that encrypts and signs session cookies (made once, owner-only)."""
        return Path(self.data_dir) / "gateway" / "session.key"

    @property
    def signin_token_path(self) -> Path:
        """The first admin's one-time sign-in token, for the launcher to print (owner-only)."""
        return Path(self.data_dir) / "signin-token"

    @property
    def uploads_dir(self) -> Path:
        """Chunked uploads being received (owner-only), each until it is in the Object Store."""
        return Path(self.data_dir) / "gateway" / "uploads"

    @property
    def cache_dir(self) -> Path:
        """Local cache of blobs fetched from the Object Store (mean images)."""
        return Path(self.data_dir) / "gateway" / "cache"


@functools.cache
def get_settings() -> Settings:
    """Settings from the environment, read once."""
    return env_settings(
        Settings,
        "gateway",
        aliases={"port": "DIGITS_PORT", "admin_password": "DIGITS_ADMIN_PASSWORD"},
    )
