"""The command line's contract: exit codes and messages, whatever the command does."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from sync import preflight
from sync.checks import fail, ok, warn
from sync.cli import app
from sync.errors import BinlogPurgedError, ConfigError
from sync.settings import Settings, load_settings


@pytest.fixture
def env_file(tmp_path: Path) -> Path:
    path = tmp_path / "empty.env"
    path.write_text("")
    return path


def invoke(env_file: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["--env-file", str(env_file), *args])
    return result.exit_code, result.stdout, result.stderr


def test_error_of_the_tree_prints_reason_and_fix_and_uses_its_exit_code(
        monkeypatch: pytest.MonkeyPatch, env_file: Path) -> None:
    def purged(settings: Settings) -> list[object]:
        raise BinlogPurgedError("the checkpoint binlog.000007 is purged", fix="bootstrap again")

    monkeypatch.setattr(preflight, "run_checks", purged)
    code, _, err = invoke(env_file, "check")
    assert code == 1
    assert "the checkpoint binlog.000007 is purged" in err
    assert "fix: bootstrap again" in err

    def bad_config(settings: Settings) -> list[object]:
        raise ConfigError("no", fix="yes")

    monkeypatch.setattr(preflight, "run_checks", bad_config)
    assert invoke(env_file, "check")[0] == 2


def test_unexpected_error_is_one_line_and_exit_1(monkeypatch: pytest.MonkeyPatch,
                                                 env_file: Path) -> None:
    def broken(settings: Settings) -> list[object]:
        raise KeyError("surprise")

    monkeypatch.setattr(preflight, "run_checks", broken)
    code, _, err = invoke(env_file, "check")
    assert code == 1
    assert err.strip() == "unexpected error: KeyError: 'surprise'"


def test_check_output_and_exit_status(monkeypatch: pytest.MonkeyPatch, env_file: Path) -> None:
    results = [ok("a", "fine"), warn("b", "meh", "do b"), fail("c", "broken", "do c")]
    monkeypatch.setattr(preflight, "run_checks", lambda settings: results)
    code, out, _ = invoke(env_file, "check")
    assert code == 1
    assert out.splitlines() == ["✓ a: fine", "! b: meh", "    fix: do b", "✗ c: broken",
                                "    fix: do c"]
    monkeypatch.setattr(preflight, "run_checks", lambda settings: results[:2])
    assert invoke(env_file, "check")[0] == 0


def test_extra_checks_can_be_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(preflight, "CHECKS", list(preflight.CHECKS))

    @preflight.register_check
    def mapping(ctx: preflight.PreflightContext) -> list[preflight.CheckResult]:
        return [ok("mapping", str(ctx.settings.server_id))]

    assert preflight.CHECKS[-1] is mapping
    monkeypatch.setattr(preflight, "gather", lambda settings: preflight.PreflightContext(
        settings, None, None, None, None))
    monkeypatch.setattr(preflight, "CHECKS", [mapping])
    settings = load_settings(None, AURORA_SYNC_SERVER_ID=7)
    assert preflight.run_checks(settings) == [ok("mapping", "7")]
