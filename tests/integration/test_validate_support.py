"""Helpers for the validate and cutover tests: an env file from a Deployment's settings."""

from __future__ import annotations

from pathlib import Path

from sync.dev.demo import write_env_file
from sync.settings import Settings


def env_values(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment variables that rebuild ``settings`` (the ones the tests set)."""
    values = {
        "SOURCE_DB_HOST": settings.source_host, "SOURCE_DB_PORT": str(settings.source_port),
        "SOURCE_DB_USER": settings.source_user,
        "SOURCE_DB_PASSWORD": settings.source_password.get_secret_value(),
        "SOURCE_DB_NAME": settings.source_db,
        "TIDB_HOST": settings.target_host, "TIDB_PORT": str(settings.target_port),
        "TIDB_USER": settings.target_user,
        "TIDB_PASSWORD": settings.target_password.get_secret_value(),
        "GATEWAY_DB_NAME": settings.gateway_db, "SYLLABUS_DB_NAME": settings.syllabus_db,
        "SUBJECT_DB_NAME": settings.subject_db, "FILE_DB_NAME": settings.file_db,
        "CONFIG_DB_NAME": settings.config_db, "AURORA_SYNC_STATE_DB": settings.state_db,
        "AURORA_SYNC_MAPPING": str(settings.mapping_file),
        "AURORA_SYNC_SERVER_ID": str(settings.server_id),
        "AURORA_SYNC_HTTP_ADDR": settings.http_addr,
        "AURORA_SYNC_READ_TIMEOUT": str(settings.read_timeout),
        "AURORA_SYNC_REPLICATION_HEARTBEAT": str(settings.replication_heartbeat),
        "AURORA_SYNC_RETRY_MAX_SECONDS": str(settings.retry_max_seconds),
        "AURORA_SYNC_LOG_LEVEL": "warning",
    }
    values.update(extra)
    return values


def env_file_for(settings: Settings, path: Path, **extra: str) -> Path:
    return write_env_file(path, env_values(settings, **extra))
