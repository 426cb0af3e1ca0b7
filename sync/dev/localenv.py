"""Settings for aurora-sync against a pair of throwaway servers (tests, demo, benchmarks).

``prefix`` gives every database its own name (``<prefix>_aurora``, ``<prefix>_gateway``...), so
several deployments can share one pair of servers without seeing each other's rows.
"""

from __future__ import annotations

import zlib
from pathlib import Path

from sync.dev.localdb import LocalServer
from sync.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]


def local_values(source: LocalServer, target: LocalServer, prefix: str,
                 **overrides: object) -> dict[str, str]:
    """The settings as environment variables (for an env file or a subprocess)."""
    values: dict[str, object] = {
        "SOURCE_DB_HOST": source.host, "SOURCE_DB_PORT": source.port,
        "SOURCE_DB_USER": source.user, "SOURCE_DB_PASSWORD": source.password,
        "SOURCE_DB_NAME": f"{prefix}_aurora",
        "TIDB_HOST": target.host, "TIDB_PORT": target.port,
        "TIDB_USER": target.user, "TIDB_PASSWORD": target.password,
        "GATEWAY_DB_NAME": f"{prefix}_gateway", "SYLLABUS_DB_NAME": f"{prefix}_syllabus",
        "SUBJECT_DB_NAME": f"{prefix}_subject", "FILE_DB_NAME": f"{prefix}_file",
        "CONFIG_DB_NAME": f"{prefix}_config", "AURORA_SYNC_STATE_DB": f"{prefix}_state",
        "AURORA_SYNC_HEARTBEAT_SCHEMA": f"{prefix}_heartbeat",
        "AURORA_SYNC_MAPPING": str(ROOT / "config" / "mapping.yaml"),
        # A stable id per prefix: two deployments on one source must not share one.
        "AURORA_SYNC_SERVER_ID": 900_000 + zlib.crc32(prefix.encode()) % 90_000,
        "AURORA_SYNC_READ_TIMEOUT": 10, "AURORA_SYNC_REPLICATION_HEARTBEAT": 1,
        "AURORA_SYNC_RETRY_MAX_SECONDS": 90,
    }
    values.update(overrides)
    return {k: str(v) for k, v in values.items()}


def local_settings(source: LocalServer, target: LocalServer, prefix: str,
                   **overrides: object) -> Settings:
    values: dict[str, object] = dict(local_values(source, target, prefix, **overrides))
    # Validated from strings exactly as the environment would give them.
    return Settings.model_validate(values)


def reader_settings(source: LocalServer, *, server_id: int, **overrides: object) -> Settings:
    """Settings for reading one throwaway server's binlog (no target involved)."""
    values: dict[str, object] = {
        "source_host": source.host, "source_port": source.port,
        "source_user": source.user, "source_password": source.password,
        "server_id": server_id,
    }
    return load_settings(None, **{**values, **overrides})
