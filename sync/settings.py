"""aurora-sync's one settings object, built once at start and passed down.

The migration guide's variable names are read as they are (``SOURCE_DB_*``, ``TIDB_*``,
``*_DB_NAME``); aurora-sync's own settings all start with ``AURORA_SYNC_``. Values come from
the environment, then a ``.env`` file; a password may instead be read from the file named by
``*_PASSWORD_FILE`` (Docker and Kubernetes secrets). Passwords are :class:`SecretStr`: they
print as ``**********`` and never reach logs, errors or metrics.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from sync.errors import ConfigError

LOGICAL_DATABASES = ("gateway_db", "syllabus_db", "subject_db", "file_db", "config_db")


@dataclass(frozen=True)
class Endpoint:
    """Where and how to connect to one server."""

    role: str
    host: str
    port: int
    user: str
    password: SecretStr
    ssl_ca: Path | None
    verify_identity: bool
    connect_timeout: float

    def __str__(self) -> str:
        tls = f", TLS ca={self.ssl_ca}" if self.ssl_ca else ""
        return f"{self.role} {self.user}@{self.host}:{self.port}{tls}"


def _env(*names: str) -> Any:
    return AliasChoices(*names)


class Settings(BaseSettings):
    """Every setting, with the environment variable it is read from."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        populate_by_name=True,
    )

    # The source: the aurora monolith (guide, step 4).
    source_host: str = Field("127.0.0.1", validation_alias=_env("SOURCE_DB_HOST"))
    source_port: int = Field(3306, ge=1, le=65535, validation_alias=_env("SOURCE_DB_PORT"))
    source_user: str = Field("root", validation_alias=_env("SOURCE_DB_USER"))
    source_password: SecretStr = Field(SecretStr(""), validation_alias=_env("SOURCE_DB_PASSWORD"))
    source_password_file: Path | None = Field(
        None, validation_alias=_env("SOURCE_DB_PASSWORD_FILE")
    )
    source_db: str = Field("aurora", validation_alias=_env("SOURCE_DB_NAME"))
    source_ssl_ca: Path | None = Field(None, validation_alias=_env("SOURCE_DB_SSL_CA"))
    source_verify_identity: bool = Field(
        True, validation_alias=_env("SOURCE_DB_SSL_VERIFY_IDENTITY")
    )

    # The target: the TiDB cluster holding the five service databases.
    target_host: str = Field("127.0.0.1", validation_alias=_env("TIDB_HOST"))
    target_port: int = Field(4000, ge=1, le=65535, validation_alias=_env("TIDB_PORT"))
    target_user: str = Field("root", validation_alias=_env("TIDB_USER"))
    target_password: SecretStr = Field(SecretStr(""), validation_alias=_env("TIDB_PASSWORD"))
    target_password_file: Path | None = Field(None, validation_alias=_env("TIDB_PASSWORD_FILE"))
    target_ssl_ca: Path | None = Field(None, validation_alias=_env("TIDB_SSL_CA"))
    target_verify_identity: bool = Field(True, validation_alias=_env("TIDB_SSL_VERIFY_IDENTITY"))

    gateway_db: str = Field("gateway_db", validation_alias=_env("GATEWAY_DB_NAME"))
    syllabus_db: str = Field("syllabus_db", validation_alias=_env("SYLLABUS_DB_NAME"))
    subject_db: str = Field("subject_db", validation_alias=_env("SUBJECT_DB_NAME"))
    file_db: str = Field("file_db", validation_alias=_env("FILE_DB_NAME"))
    config_db: str = Field("config_db", validation_alias=_env("CONFIG_DB_NAME"))

    # aurora-sync's own settings.
    state_db: str = Field("aurora_sync", validation_alias=_env("AURORA_SYNC_STATE_DB"))
    pipeline: str = Field("default", validation_alias=_env("AURORA_SYNC_PIPELINE"))
    server_id: int = Field(
        4_201_001, ge=1, le=2**32 - 1, validation_alias=_env("AURORA_SYNC_SERVER_ID")
    )
    mapping_file: Path = Field(
        Path("config/mapping.yaml"), validation_alias=_env("AURORA_SYNC_MAPPING")
    )
    http_addr: str = Field("127.0.0.1:9108", validation_alias=_env("AURORA_SYNC_HTTP_ADDR"))
    connect_timeout: float = Field(
        10.0, gt=0, validation_alias=_env("AURORA_SYNC_CONNECT_TIMEOUT")
    )
    # Stream reading: a dead replication connection is noticed within read_timeout.
    read_timeout: float = Field(30.0, gt=0, validation_alias=_env("AURORA_SYNC_READ_TIMEOUT"))
    # Target statements and commits: a half-open connection fails with 2013 (retried on a
    # new connection) after this long; it must exceed the slowest legitimate batch commit.
    target_timeout: float = Field(
        120.0, gt=0, validation_alias=_env("AURORA_SYNC_TARGET_TIMEOUT")
    )
    replication_heartbeat: float = Field(
        5.0, gt=0, validation_alias=_env("AURORA_SYNC_REPLICATION_HEARTBEAT")
    )
    # Apply batches: far below TiDB's 100 MiB transaction limit.
    batch_max_rows: int = Field(5000, ge=1, validation_alias=_env("AURORA_SYNC_BATCH_MAX_ROWS"))
    batch_max_bytes: int = Field(
        16 * 1024 * 1024, ge=1024, validation_alias=_env("AURORA_SYNC_BATCH_MAX_BYTES")
    )
    batch_max_ms: int = Field(100, ge=1, validation_alias=_env("AURORA_SYNC_BATCH_MAX_MS"))
    # "process": the binlog is read in a child process and decoded, mapped and written in
    # the stream's (sync.source.split: 1.02-1.17x the catch-up rate on two cores);
    # "thread": all in one process.
    stream_reader: Literal["process", "thread"] = Field(
        "process", validation_alias=_env("AURORA_SYNC_STREAM_READER")
    )
    retry_max_seconds: float = Field(
        300.0, gt=0, validation_alias=_env("AURORA_SYNC_RETRY_MAX_SECONDS")
    )
    dead_letter: bool = Field(False, validation_alias=_env("AURORA_SYNC_DEAD_LETTER"))
    # Bootstrap.
    # 2,000 keeps a 1,000,000-row copy under 300 MB with two workers (bench_bootstrap).
    chunk_size: int = Field(2000, ge=1, validation_alias=_env("AURORA_SYNC_CHUNK_SIZE"))
    bootstrap_workers: int = Field(
        2, ge=1, le=64, validation_alias=_env("AURORA_SYNC_BOOTSTRAP_WORKERS")
    )
    # "aurora": aurora's server renders mapped rows as SQL literals (bootstrap.literals), 3x
    # faster; "python": every row goes through the Python mapping (less work for aurora).
    bootstrap_render: Literal["aurora", "python"] = Field(
        "aurora", validation_alias=_env("AURORA_SYNC_BOOTSTRAP_RENDER")
    )
    max_rows_per_second: int = Field(
        0, ge=0, validation_alias=_env("AURORA_SYNC_MAX_ROWS_PER_SECOND")
    )
    max_threads_running: int = Field(
        0, ge=0, validation_alias=_env("AURORA_SYNC_MAX_THREADS_RUNNING")
    )
    # Operations.
    # Seconds between the daemon's one-table validations (0: off).
    validate_interval: float = Field(
        900.0, ge=0, validation_alias=_env("AURORA_SYNC_VALIDATE_INTERVAL")
    )
    health_max_lag: float = Field(10.0, gt=0, validation_alias=_env("AURORA_SYNC_HEALTH_MAX_LAG"))
    heartbeat_schema: str = Field(
        "aurora_sync_heartbeat", validation_alias=_env("AURORA_SYNC_HEARTBEAT_SCHEMA")
    )
    heartbeat_interval: float = Field(
        1.0, gt=0, validation_alias=_env("AURORA_SYNC_HEARTBEAT_INTERVAL")
    )
    storage_root: Path | None = Field(None, validation_alias=_env("AURORA_SYNC_STORAGE_ROOT"))
    # Fetching file URLs reaches outside hosts: the daemon does it only when asked.
    checksum_job: bool = Field(False, validation_alias=_env("AURORA_SYNC_CHECKSUM_JOB"))
    checksum_rate: float = Field(10.0, ge=0, validation_alias=_env("AURORA_SYNC_CHECKSUM_RATE"))
    log_format: Literal["auto", "json", "console"] = Field(
        "auto", validation_alias=_env("AURORA_SYNC_LOG_FORMAT")
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", validation_alias=_env("AURORA_SYNC_LOG_LEVEL")
    )

    @model_validator(mode="after")
    def _read_password_files(self) -> Settings:
        for role in ("source", "target"):
            path: Path | None = getattr(self, f"{role}_password_file")
            if path is None:
                continue
            try:
                secret = path.read_text(encoding="utf-8").rstrip("\r\n")
            except OSError as exc:
                variable = "SOURCE_DB_PASSWORD_FILE" if role == "source" else "TIDB_PASSWORD_FILE"
                raise ValueError(
                    f"{variable}: cannot read the {role} password file {path}: {exc.strerror}"
                ) from None
            setattr(self, f"{role}_password", SecretStr(secret))
        return self

    @property
    def source(self) -> Endpoint:
        return Endpoint(
            role="source",
            host=self.source_host,
            port=self.source_port,
            user=self.source_user,
            password=self.source_password,
            ssl_ca=self.source_ssl_ca,
            verify_identity=self.source_verify_identity,
            connect_timeout=self.connect_timeout,
        )

    @property
    def target(self) -> Endpoint:
        return Endpoint(
            role="target",
            host=self.target_host,
            port=self.target_port,
            user=self.target_user,
            password=self.target_password,
            ssl_ca=self.target_ssl_ca,
            verify_identity=self.target_verify_identity,
            connect_timeout=self.connect_timeout,
        )

    @property
    def databases(self) -> Mapping[str, str]:
        """Logical service database name (as in mapping.yaml) → physical name on the target."""
        return {
            "gateway_db": self.gateway_db,
            "syllabus_db": self.syllabus_db,
            "subject_db": self.subject_db,
            "file_db": self.file_db,
            "config_db": self.config_db,
        }

    def database(self, logical: str) -> str:
        """The physical name of a logical database; unknown names pass through unchanged,
        so generic routes may name any database."""
        return self.databases.get(logical, logical)


def load_settings(env_file: Path | str | None = ".env", **overrides: Any) -> Settings:
    """Build the settings, turning pydantic's errors into one clear :class:`ConfigError`."""
    try:
        return Settings(_env_file=env_file, **overrides)  # type: ignore[call-arg]
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"])
            # A model validator's message names its variable itself.
            message = str(err["msg"]).removeprefix("Value error, ")
            lines.append(f"{where}: {message}" if where else message)
        raise ConfigError(
            "invalid settings: " + "; ".join(lines),
            fix="correct the environment variable or .env entry named above "
            "(config/example.env documents each one)",
        ) from None
