"""The ``aurora-sync`` command line: parse options, build the settings once, call one function.

Each command maps an :class:`~sync.errors.AuroraSyncError` to its exit code (2 for
configuration, 1 otherwise) and prints its description (reason and fix) to stderr. Anything
else is a defect: a one-line message, exit 1, and the traceback only at debug level.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import structlog
import typer

from sync import preflight, schema
from sync.errors import AuroraSyncError
from sync.logging import configure_logging
from sync.settings import Settings, load_settings

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
    results = run(ctx, preflight.run_checks)
    typer.echo(preflight.render(results))
    if preflight.failed(results):
        typer.echo("preflight failed: fix the ✗ lines above and run aurora-sync check again",
                   err=True)
        raise typer.Exit(1)
