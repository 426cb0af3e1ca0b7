"""The ``aurora-sync`` command line: parse options, build the settings once, call one function.

Each command maps an :class:`~sync.errors.AuroraSyncError` to its exit code (2 for
configuration, 1 otherwise) and prints its description (reason and fix) to stderr. Anything
else is a defect: a one-line message, exit 1, and the traceback only at debug level.
"""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import structlog
import typer

from bootstrap.run import BootstrapResult, run_bootstrap
from sync import checksums as checksum_job
from sync import preflight, schema
from sync import validate as validation
from sync.checks import CheckResult, Status
from sync.cutover import CutoverOptions, render_cutover
from sync.cutover import cutover as run_cutover
from sync.daemon import refuse_after_cutover, serve
from sync.errors import AuroraSyncError
from sync.freeze import METHODS
from sync.logging import configure_logging
from sync.mapping import preflight as mapping_preflight
from sync.model import Position
from sync.monitor import render
from sync.monitor import status as monitor_status
from sync.pipeline import StreamResult
from sync.settings import Settings, load_settings
from sync.validation.render import render_report

app = typer.Typer(
    name="aurora-sync",
    help="Live migration of the aurora monolith database into the TiDB service databases.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

T = TypeVar("T")


@app.callback()
def main(
    ctx: typer.Context,
    env_file: Annotated[
        Path, typer.Option("--env-file", help="Settings file read after the environment.")
    ] = Path(".env"),
) -> None:
    """Settings come from the environment, then --env-file (see config/example.env)."""
    ctx.obj = env_file


def settings_of(ctx: typer.Context) -> Settings:
    """Build the settings from the command line's --env-file and configure logging."""
    settings = load_settings(ctx.obj)
    configure_logging(settings)
    return settings


def run(ctx: typer.Context, action: Callable[[Settings], T]) -> T:
    """Run ``action`` with the settings, turning errors into messages and exit codes."""
    try:
        return action(settings_of(ctx))
    except AuroraSyncError as exc:
        typer.echo(f"error: {exc.describe()}", err=True)
        raise typer.Exit(exc.exit_code) from None
    except Exception as exc:  # noqa: BLE001 - the last line of defence, reported then exit 1
        structlog.get_logger().debug("unexpected error", exc_info=True)
        typer.echo(f"unexpected error: {type(exc).__name__}: {exc}", err=True)
        raise typer.Exit(1) from None


@app.command()
def init(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the SQL and change nothing.")
    ] = False,
) -> None:
    """Create the five service databases and the state database, and load their schemas."""
    if dry_run:
        plans = run(ctx, schema.plan_init)
        typer.echo(schema.render_plan(plans))
        return
    plans = run(ctx, schema.init_target)
    for plan in plans:
        typer.echo(f"✓ {plan.physical}: {len(plan.tables)} tables ({plan.schema_file.name})")


@app.command()
def check(ctx: typer.Context) -> None:
    """Preflight: binlog settings, privileges, TLS and schemas of the source and the target."""
    def checks(settings: Settings) -> list[CheckResult]:
        # A mapping file that does not load is a configuration error (exit 2) before anything.
        spec = mapping_preflight.load_spec(settings)
        results = preflight.run_checks(settings)
        return results + list(mapping_preflight.mapping_results(settings, spec))

    results = run(ctx, checks)
    typer.echo(preflight.render(results))
    if preflight.failed(results):
        typer.echo("preflight failed: fix the ✗ lines above and run aurora-sync check again",
                   err=True)
        mapping_failed = any(mapping_preflight.is_mapping_failure(r) for r in results
                             if r.status is Status.FAIL)
        raise typer.Exit(2 if mapping_failed else 1)


@app.command()
def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON document.")] = False,
    watch: Annotated[
        bool, typer.Option("--watch", help="Live view, refreshed every 2 s (Ctrl-C ends).")
    ] = False,
    exact: Annotated[
        bool, typer.Option("--exact", help="COUNT(*) every table instead of estimates.")
    ] = False,
) -> None:
    """State, positions, lag, rates, table sizes, last error and what to do; the daemon's
    live figures too when it answers on AURORA_SYNC_HTTP_ADDR."""
    if watch and as_json:
        typer.echo("error: --watch is for people; scripts poll --json (or GET /status)",
                   err=True)
        raise typer.Exit(2)
    if watch:
        run(ctx, lambda s: render.watch(lambda: monitor_status.gather(s, exact=exact)))
        return
    document = run(ctx, lambda s: monitor_status.gather(s, exact=exact))
    if as_json:
        typer.echo(json.dumps(document, indent=2, default=str))
    else:
        render.print_once(document)


@app.command()
def checksums(
    ctx: typer.Context,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Check at most N files.")
    ] = None,
    rate: Annotated[
        float, typer.Option("--rate", min=0, help="Files per second at most (0: no limit).")
    ] = 10.0,
) -> None:
    """Compute real sha256 checksums and sizes of pending file_db.files rows (one pass)."""
    report = run(ctx, lambda s: checksum_job.checksum_pass(s, limit=limit, rate=rate))
    typer.echo(report.line())


@app.command()
def bootstrap(
    ctx: typer.Context,
    tables: Annotated[
        list[str] | None,
        typer.Option("--tables", help="Re-copy only these tables (repeat or comma-separate); "
                     "target rows gone from aurora are removed."),
    ] = None,
    workers: Annotated[
        int | None, typer.Option("--workers", min=1, help="Parallel copy workers.")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Copy everything again after a finished bootstrap "
                           "(also after a cutover handed the databases to the services).")
    ] = False,
) -> None:
    """Copy aurora into the service databases (resumes a killed run), then record where the
    stream starts and until where it replays in safe mode."""
    names = _table_names(tables)

    def action(settings: Settings) -> BootstrapResult:
        refuse_after_cutover(settings, force=force)
        return run_bootstrap(settings, tables=names or None, workers=workers, force=force)

    result = run(ctx, action)
    if result.skipped:
        typer.echo(f"bootstrap run {result.run_id} already finished; --force copies again, "
                   "--tables re-copies chosen tables")
    typer.echo(f"bootstrap run {result.run_id} ({result.method}): {result.rows:,} rows in "
               f"{result.seconds:.1f}s; stream from {result.start}, safe mode until "
               f"{result.safe_until}")


@app.command("validate")
def validate_command(
    ctx: typer.Context,
    tables: Annotated[
        list[str] | None,
        typer.Option("--tables", help="Compare only these target tables (db.table or table; "
                     "repeat or comma-separate)."),
    ] = None,
    chunk_size: Annotated[
        int, typer.Option("--chunk-size", min=1, help="aurora rows per checksum chunk.")
    ] = 5000,
    settle_timeout: Annotated[
        float, typer.Option("--settle-timeout", min=0, help="Seconds to wait for the daemon "
                            "to apply a position before comparing a chunk anyway.")
    ] = 30.0,
    threads: Annotated[
        int, typer.Option("--threads", min=1, help="Connections to each server hashing "
                          "chunks at once.")
    ] = 3,
) -> None:
    """Compare every target table with the mapping of aurora (counts and checksums per key
    chunk, as of one binlog position); exit 1 on any difference."""
    names = _table_names(tables)
    options = validation.ValidateOptions(tables=names, chunk_size=chunk_size,
                                         settle_timeout=settle_timeout, threads=threads)
    report = run(ctx, lambda s: validation.validate(s, options))
    typer.echo(render_report(report))
    if not report.clean:
        raise typer.Exit(1)


@app.command("cutover")
def cutover_command(
    ctx: typer.Context,
    freeze: Annotated[
        str, typer.Option("--freeze", help="How writes on aurora stop: read-only (SET GLOBAL "
                          "read_only), lock (LOCK TABLES ... READ; works without SUPER) or "
                          "none (the application is already stopped).")
    ] = "read-only",
    max_lag: Annotated[
        float, typer.Option("--max-lag", min=0, help="Seconds of lag allowed before freezing.")
    ] = 5.0,
    drain_timeout: Annotated[
        float, typer.Option("--drain-timeout", min=0, help="Seconds the daemon may take to "
                            "apply the final position; past it aurora is unfrozen.")
    ] = 10.0,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check the preconditions only.")
    ] = False,
) -> None:
    """Freeze aurora, drain the daemon to the final position, verify, record cut_over and
    stop the daemon; any failure unfreezes aurora and leaves the daemon streaming."""
    if freeze not in METHODS:
        raise typer.BadParameter(f"one of {', '.join(METHODS)}", param_hint="--freeze")
    options = CutoverOptions(freeze=freeze, max_lag=max_lag, drain_timeout=drain_timeout,
                             dry_run=dry_run)
    report = run(ctx, lambda s: run_cutover(s, options,
                                            lambda step: typer.echo(f"… {step}", err=True)))
    typer.echo(render_cutover(report, dry_run=dry_run))


def _table_names(tables: list[str] | None) -> tuple[str, ...]:
    """``--tables`` values, repeated or comma-separated."""
    return tuple(n.strip() for item in tables or [] for n in item.split(",") if n.strip())


def _position(text: str | None, option: str) -> Position | None:
    if text is None:
        return None
    file, sep, pos = text.rpartition(":")
    if not sep or not file or not pos.isdigit():
        raise typer.BadParameter(f"{text!r} is not FILE:POSITION (e.g. binlog.000042:1337)",
                                 param_hint=option)
    return Position(file, int(pos))


def _stop_on_signals() -> threading.Event:
    """SIGTERM and SIGINT finish the open batch and stop: the checkpoint is committed."""
    stop = threading.Event()

    def handler(signum: int, frame: object) -> None:
        structlog.get_logger("aurora_sync.cli").info("stopping", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop


@app.command("run")
def run_daemon(
    ctx: typer.Context,
    until: Annotated[
        str | None, typer.Option("--until", help="Stop once FILE:POSITION is applied.")
    ] = None,
    accept_ddl: Annotated[
        str | None,
        typer.Option("--accept-ddl", help="Continue past the schema change at FILE:POSITION "
                     "that halted the stream (after updating the mapping and the targets)."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Write into the service databases even after a "
                           "cutover handed them to the services.")
    ] = False,
) -> None:
    """The daemon: bootstrap when no finished bootstrap exists, then stream aurora's binlog
    into the service databases; serves /metrics, /healthz and /status."""
    stop_at = _position(until, "--until")
    accept_at = _position(accept_ddl, "--accept-ddl")
    stop = _stop_on_signals()

    def action(settings: Settings) -> StreamResult:
        refuse_after_cutover(settings, force=force)
        run_bootstrap(settings, stop=stop)
        return serve(settings, until=stop_at, stop=stop, accept_ddl_at=accept_at)

    result = run(ctx, action)
    position = result.checkpoint.position if result.checkpoint else "nothing applied"
    typer.echo(f"stopped ({result.stopped_by}) at {position}: {result.transactions:,} "
               f"transactions in {result.batches:,} batches, {result.reconnects} reconnects")
