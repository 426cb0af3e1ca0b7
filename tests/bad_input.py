"""The ``bad_input`` fixture: a test records each bad input it tries and what aurora-sync did.

    @pytest.mark.bad_input
    def test_wrong_ca(bad_input: BadInputRecorder, ...) -> None:
        with pytest.raises(ConnectError) as err:
            connect(...)
        bad_input.record(category="TLS", given="a CA that did not sign the server's "
                         "certificate", outcome=err.value.describe())

``outcome`` is the message aurora-sync gave, captured while the test ran. Only the records of
tests that pass count; with ``AURORA_SYNC_BAD_INPUTS=<path>`` they are merged into that JSON
file when the session ends (``python -m sync.dev.bad_inputs`` renders it as
docs/bad-inputs.md). A marked test that records nothing fails, and so does a record whose
outcome shows a password: bad inputs are where secrets leak first.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterable, Iterator
from pathlib import Path

import pytest

from sync.dev import bad_inputs
from sync.dev.bad_inputs import BadInput
from sync.dev.localdb import ADMIN_PASSWORD

_RECORDS = pytest.StashKey[list[BadInput]]()
_RAN = pytest.StashKey[set[str]]()
_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


class BadInputRecorder:
    """What one test recorded; kept only if the test passes."""

    def __init__(self, test: str, secrets: Iterable[str] = ()) -> None:
        self.test = test
        self.secrets = {ADMIN_PASSWORD, *secrets}
        self.records: list[BadInput] = []

    def record(self, *, category: str, given: str, outcome: str, exit_code: int | None = None,
               effect: str | None = None, test: str | None = None,
               secrets: Iterable[str] = ()) -> str:
        """Record ``given`` and the message aurora-sync gave for it; returns ``outcome``.

        ``secrets`` (and the throwaway servers' admin password) must not appear in
        ``outcome``; in ``given``, written by the test, they are masked."""
        hidden = {*self.secrets, *secrets}
        shown = bad_inputs.leaked(outcome, hidden)
        assert not shown, f"aurora-sync showed a secret ({', '.join(shown)}) in: {outcome}"
        self.records.append(BadInput(
            category=category,
            test=test or self.test,
            given=bad_inputs.normalize(bad_inputs.redact(given, hidden)),
            outcome=bad_inputs.normalize(outcome),
            exit_code=exit_code,
            effect=effect,
        ))
        return outcome


@pytest.fixture
def bad_input(request: pytest.FixtureRequest) -> Iterator[BadInputRecorder]:
    node = request.node
    if node.get_closest_marker(bad_inputs.MARKER) is None:
        pytest.fail(f"{node.nodeid} uses the bad_input fixture: mark it "
                    "@pytest.mark.bad_input so that docs/bad-inputs.md lists it")
    recorder = BadInputRecorder(node.nodeid)
    yield recorder
    call = node.stash.get(_REPORTS, {}).get("call")
    if call is None or not call.passed:
        return
    if not recorder.records:
        pytest.fail(f"{node.nodeid} is marked bad_input but recorded no bad input: call "
                    "bad_input.record(...) with the message aurora-sync gave")
    request.config.stash.setdefault(_RECORDS, []).extend(recorder.records)
    request.config.stash.setdefault(_RAN, set()).add(node.nodeid)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    unrecorded = [item.nodeid for item in items
                  if item.get_closest_marker(bad_inputs.MARKER) is not None
                  and "bad_input" not in getattr(item, "fixturenames", ())]
    if unrecorded:
        raise pytest.UsageError("marked bad_input without the bad_input fixture (nothing "
                                "would be recorded): " + ", ".join(unrecorded))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
        item: pytest.Item, call: pytest.CallInfo[None],
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report


def pytest_sessionfinish(session: pytest.Session) -> None:
    target = os.environ.get(bad_inputs.ENV)
    if not target:
        return
    path = Path(target)
    merged = bad_inputs.merge(bad_inputs.load(path), session.config.stash.get(_RECORDS, []),
                              session.config.stash.get(_RAN, set()))
    bad_inputs.save(path, merged)
