"""The demo: aurora-sync against throwaway local databases, step by step.

``python -m sync.dev.demo [--keep]`` starts a source (the aurora monolith) and a target (a
stand-in for the TiDB cluster, serving TLS with its own CA), writes the env file a user would
write, and runs the same functions ``aurora-sync init`` and ``aurora-sync check`` run. Each
step is one entry in :data:`STEPS`; later steps (generate data, bootstrap, stream under load,
validate, cut over) are appended the same way.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from sync import preflight, schema
from sync.checks import Status
from sync.dev import demo_live
from sync.dev.load import RunningLoad
from sync.dev.localdb import LocalDbError, LocalServer, free_port, start_server
from sync.errors import AuroraSyncError
from sync.settings import LOGICAL_DATABASES, Settings, load_settings

SOURCE_SERVER_ID = 9101
TARGET_SERVER_ID = 9102
REPLICATION_USER = "aurora_sync"


@dataclass
class Demo:
    """What the steps share: the servers, the env file and the settings built from it."""

    console: Console
    workdir: Path
    source: LocalServer | None = None
    target: LocalServer | None = None
    env_file: Path | None = None
    replication_password: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    load: RunningLoad | None = None
    daemon: subprocess.Popen[bytes] | None = None

    @property
    def servers(self) -> tuple[LocalServer, LocalServer]:
        if self.source is None or self.target is None:
            raise RuntimeError("the servers are not started yet")
        return self.source, self.target

    def settings(self) -> Settings:
        return load_settings(self.env_file)


Step = tuple[str, Callable[[Demo], str]]


def env_values(source: LocalServer, target: LocalServer, *, source_user: str,
               source_password: str, target_host: str = "localhost") -> dict[str, str]:
    """The guide's variables for a local source and target (the target's CA when TLS)."""
    values = {
        "SOURCE_DB_HOST": source.host, "SOURCE_DB_PORT": str(source.port),
        "SOURCE_DB_USER": source_user, "SOURCE_DB_PASSWORD": source_password,
        "SOURCE_DB_NAME": "aurora",
        "TIDB_HOST": target_host, "TIDB_PORT": str(target.port),
        "TIDB_USER": target.user, "TIDB_PASSWORD": target.password,
        **{f"{name.split('_')[0].upper()}_DB_NAME": name for name in LOGICAL_DATABASES},
        "AURORA_SYNC_STATE_DB": "aurora_sync",
        "AURORA_SYNC_SERVER_ID": "4201001",
    }
    if target.tls is not None:
        values["TIDB_SSL_CA"] = str(target.tls.ca_cert)
    return values


def write_env_file(path: Path, values: Mapping[str, str]) -> Path:
    """Write ``values`` as a .env file readable only by its owner (it holds passwords)."""
    path.touch(mode=0o600, exist_ok=True)
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()), encoding="utf-8")
    return path


def start_servers(demo: Demo) -> str:
    # Inside the work folder, so one rm -rf removes everything a kept demo leaves behind.
    demo.source = start_server("demo-source", server_id=SOURCE_SERVER_ID, base_dir=demo.workdir)
    demo.target = start_server("demo-target", server_id=TARGET_SERVER_ID, tls=True,
                               base_dir=demo.workdir)
    return (f"source on 127.0.0.1:{demo.source.port} (ROW binlog, full images and metadata); "
            f"target on localhost:{demo.target.port} with TLS")


def load_source(demo: Demo) -> str:
    source, _ = demo.servers
    source.execute("CREATE DATABASE IF NOT EXISTS aurora")
    source.run_script(schema.schema_file(schema.SOURCE_SCHEMA).read_text(), database="aurora")
    tables = schema.schema_tables(schema.SOURCE_SCHEMA)
    return f"aurora with {len(tables)} tables: {', '.join(tables)}"


def create_replication_user(demo: Demo) -> str:
    source, _ = demo.servers
    source.execute(f"CREATE USER IF NOT EXISTS '{REPLICATION_USER}'@'%%' IDENTIFIED BY %s",
                   (demo.replication_password,))
    grants = (f"GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO '{REPLICATION_USER}'@'%'",
              f"GRANT SELECT ON aurora.* TO '{REPLICATION_USER}'@'%'",
              # The lag heartbeat lives in its own small schema on the source.
              f"GRANT ALL PRIVILEGES ON aurora_sync_heartbeat.* TO '{REPLICATION_USER}'@'%'")
    for grant in grants:
        source.execute(grant)
    return f"{REPLICATION_USER}: REPLICATION SLAVE, REPLICATION CLIENT, SELECT on aurora"


def write_env(demo: Demo) -> str:
    source, target = demo.servers
    values = env_values(source, target, source_user=REPLICATION_USER,
                        source_password=demo.replication_password)
    values["AURORA_SYNC_HTTP_ADDR"] = f"127.0.0.1:{free_port()}"
    demo.env_file = write_env_file(demo.workdir / "demo.env", values)
    return f"{demo.env_file} with the guide's variable names"


def run_init(demo: Demo) -> str:
    plans = schema.init_target(demo.settings())
    return ", ".join(f"{p.physical} ({len(p.tables)})" for p in plans)


def run_check(demo: Demo) -> str:
    results = preflight.run_checks(demo.settings())
    demo.console.print(preflight.render(results), highlight=False)
    bad = [r for r in results if r.status is Status.FAIL]
    if bad:
        raise RuntimeError(f"preflight failed: {bad[0].line()}")
    return f"{len(results)} checks, none failed"


def show_tables(demo: Demo) -> str:
    _, target = demo.servers
    settings = demo.settings()
    table = Table(title="service databases on the target")
    for column in ("logical", "database", "tables"):
        table.add_column(column)
    wanted = [(name, settings.database(name)) for name in LOGICAL_DATABASES]
    for logical, physical in [*wanted, ("state", settings.state_db)]:
        rows = target.execute(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s "
            "ORDER BY TABLE_NAME", (physical,))
        table.add_row(logical, physical, ", ".join(str(r[0]) for r in rows))
    demo.console.print(table)
    return "shown above"


STEPS: list[Step] = [
    ("start a throwaway source and target", start_servers),
    ("load the aurora schema into the source", load_source),
    ("create the login aurora-sync reads the binlog with", create_replication_user),
    ("write the env file", write_env),
    ("aurora-sync init", run_init),
    ("aurora-sync check", run_check),
    ("show the service databases", show_tables),
    ("generate aurora's data", demo_live.generate_data),
    ("start a write load on aurora", demo_live.start_load),
    ("aurora-sync run: bootstrap, then stream", demo_live.start_daemon),
    ("aurora-sync status", demo_live.show_status),
    ("stop the load; the stream catches up", demo_live.catch_up),
    ("stop the daemon", demo_live.stop_daemon),
]


def run_demo(console: Console, *, keep: bool = False, steps: list[Step] | None = None) -> None:
    """Run every step in order, then stop the servers unless ``keep``."""
    demo = Demo(console=console, workdir=Path(tempfile.mkdtemp(prefix="aurora-sync-demo-")))
    done: list[tuple[str, str]] = []
    try:
        for title, action in steps or STEPS:
            console.rule(title)
            summary = action(demo)
            console.print(f"[green]✓[/green] {summary}", highlight=False)
            done.append((title, summary))
    finally:
        _finish(demo, done, keep=keep)


def _finish(demo: Demo, done: list[tuple[str, str]], *, keep: bool) -> None:
    console = demo.console
    if demo.load is not None and demo.load.running:
        demo.load.stop()
    if not keep:
        demo_live.stop_daemon(demo)
    console.rule("what the demo did")
    for number, (title, summary) in enumerate(done, start=1):
        console.print(f"{number}. {title}: {summary}", highlight=False)
    if keep and demo.env_file is not None:
        console.print(f"\nThe servers keep running. Use them with:\n"
                      f"  aurora-sync --env-file {demo.env_file} check\n"
                      f"Stop them with: kill {_pids(demo)} && rm -rf {demo.workdir}",
                      highlight=False)
        return
    for server in (demo.source, demo.target):
        if server is not None:
            server.stop()
    shutil.rmtree(demo.workdir, ignore_errors=True)
    console.print("servers stopped, temporary files removed")


def _pids(demo: Demo) -> str:
    servers = (demo.source, demo.target)
    return " ".join(str(s.process.pid) for s in servers if s is not None and s.process)


cli = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@cli.command()
def main(
    keep: Annotated[bool, typer.Option(help="Leave the servers running afterwards.")] = False,
) -> None:
    """Show aurora-sync on throwaway local databases."""
    console = Console()
    try:
        run_demo(console, keep=keep)
    except (AuroraSyncError, LocalDbError, RuntimeError) as exc:
        console.print(f"[red]✗ the demo stopped:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None


if __name__ == "__main__":
    cli()
