"""The cutover skips validating only after a clean run that covered every target table."""

from __future__ import annotations

from pathlib import Path

from sync.cutover import _covers_every_table
from sync.mapping.resolve import load_spec
from sync.settings import Settings

MAPPING = Path(__file__).resolve().parents[2] / "config" / "mapping.yaml"


def _settings() -> Settings:
    return Settings.model_validate({"AURORA_SYNC_MAPPING": str(MAPPING)})


def test_a_run_over_every_table_counts() -> None:
    settings = _settings()
    tables = {str(t.ref): {} for t in load_spec(settings).targets()}
    assert _covers_every_table(settings, {"clean": True, "tables": tables})


def test_a_run_over_some_tables_does_not() -> None:
    settings = _settings()
    refs = [str(t.ref) for t in load_spec(settings).targets()]
    assert len(refs) > 1
    assert not _covers_every_table(settings, {"clean": True, "tables": {refs[0]: {}}})
    assert not _covers_every_table(settings, None)
