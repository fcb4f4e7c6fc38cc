"""Fill a service's frozen settings Struct from `DIGITS_*` environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec

T = TypeVar("T", bound=msgspec.Struct)

# Names every service reads without its own prefix (DIGITS_NATS_URL, DIGITS_DATA_DIR, ...).
SHARED_NAMES = frozenset({"nats_url", "data_dir", "data_roots", "node_id", "log_level"})


def env_settings(
    cls: type[T],
    service: str,
    env: Mapping[str, str] | None = None,
    aliases: Mapping[str, str] | None = None,
) -> T:
    """Build `cls` from the environment.

    A field `name` is read from `DIGITS_<SERVICE>_<NAME>`, then (for shared names) `DIGITS_<NAME>`,
    then from `aliases[name]`; unset fields keep their defaults. Lists are split like `PATH`.
    """
    env = os.environ if env is None else env
    prefix = f"DIGITS_{service.upper().replace('-', '_')}_"
    values: dict[str, Any] = {}
    for field in msgspec.structs.fields(cls):
        keys = [prefix + field.name.upper()]
        if field.name in SHARED_NAMES:
            keys.append("DIGITS_" + field.name.upper())
        if aliases and field.name in aliases:
            keys.append(aliases[field.name])
        raw = next((env[k] for k in keys if env.get(k, "") != ""), None)
        if raw is None:
            continue
        values[field.name] = _parse(raw, field.type)
    return msgspec.convert(values, cls, strict=False)


def _parse(raw: str, annotation: Any) -> Any:
    origin = getattr(annotation, "__origin__", None)
    if annotation in (list[str], tuple[str, ...]) or origin in (list, tuple):
        return [part for part in raw.split(os.pathsep) if part]
    return raw
