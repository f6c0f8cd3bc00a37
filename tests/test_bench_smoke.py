"""The benchmarks still run: each one's main at a tiny size, so a change elsewhere cannot leave them broken
until someone needs the figures. Nothing here asserts a timing (benchmarks are not tests); each checks
that the run went through and printed what its reader looks for."""

from __future__ import annotations

import sys

import pytest

from bench import burst, digest, fanout, ingest, ledger, memory, scale
from bench._common import Figure

NO_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:9/none"  # a closed port: PostgreSQL is skipped


def run_main(monkeypatch: pytest.MonkeyPatch, module: object, *args: str) -> None:
    """For the older benchmarks whose main() reads sys.argv."""
    monkeypatch.setattr(sys, "argv", [str(getattr(module, "__file__", "bench")), *args])
    module.main()  # type: ignore[attr-defined]


def names(figures: list[Figure]) -> str:
    return "\n".join(f.name for f in figures)


def test_ledger_imports_and_exports_a_small_ledger(monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    run_main(monkeypatch, ledger, "--projects", "40", "--postgres", NO_POSTGRES)
    out = capsys.readouterr().out
    for step in ("import (new ledger)", "re-import (no change)", "export .xlsx", "export .csv"):
        assert step in out
    assert "new 40" in out and "PostgreSQL: does not answer, skipped" in out


def test_digest_times_the_scan_and_the_figures(monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    run_main(monkeypatch, digest, "--projects", "30", "--reports", "3")
    out = capsys.readouterr().out
    assert "alert scan, steady" in out and "digest figures" in out


def test_ingest_feeds_reports_through_the_dispatcher_and_saves_each() -> None:
    """Every report fed through the Dispatcher is saved and answered (the benchmark stops otherwise)."""
    figures = ingest.main(["--reports", "4", "--projects", "60", "--bot", "record", "--no-postgres"])
    assert "ingest SQLite, one at a time: dispatcher / floor" in names(figures)
    assert all(f.measured > 0 for f in figures)


@pytest.mark.slow
def test_ingest_over_http_to_the_fake_bot_api_in_its_own_process() -> None:
    figures = ingest.main(["--reports", "3", "--projects", "60", "--concurrency", "1,2", "--no-postgres"])
    assert "ingest SQLite, 2 at once: dispatcher / floor" in names(figures)


def test_scale_times_every_query_on_each_ledger(capsys: pytest.CaptureFixture[str]) -> None:
    figures = scale.main(["--projects", "20,40", "--reports", "2", "--runs", "1"])
    assert {f.name.rsplit(": ", 1)[1] for f in figures} == {"alert scan", "digest figures", "/list page", "dossier"}
    assert "×" in capsys.readouterr().out  # the growth from the smaller ledger


@pytest.mark.slow
def test_fanout_delivers_each_reminder_once_with_one_and_two_senders(monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    run_main(monkeypatch, fanout, "--recipients", "6", "--rate", "25")
    out = capsys.readouterr().out
    assert "each once" in out
    assert " NO " not in out  # every message exactly once, with one sender and with two


@pytest.mark.slow
def test_memory_reads_the_resident_size_of_an_idle_then_chatting_service() -> None:
    figures = memory.main(["--projects", "30", "--reports", "2", "--settle", "0.5"])
    idle, chatted = figures
    assert idle.unit == chatted.unit == "MB" and idle.measured > 10
    assert chatted.measured > idle.measured  # the chats' types were built on first use


@pytest.mark.slow
def test_burst_answers_every_message_of_a_small_crowd(capsys: pytest.CaptureFixture[str]) -> None:
    """`bot run` in its own process answers three contacts' four quick messages each, none lost."""
    figures = burst.main(["--contacts", "3", "--no-postgres"])
    lost = next(f for f in figures if f.name == "burst SQLite K=3 answers lost")
    assert lost.measured == 0
    assert "12/12 answered" in capsys.readouterr().out
