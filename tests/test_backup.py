"""`qingshui backup` while contacts keep reporting, `qingshui restore` into another machine's empty
DATA_DIR: the restored instance is one consistent moment of the original — same `stats`, same dossiers,
the same photos byte for byte — and restore refuses a non-empty DATA_DIR and a file that is not ours."""

from __future__ import annotations

import asyncio
import io
import sqlite3
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.__main__ import build_parser
from bot.cli import backup as backup_command
from bot.cli import ledger as ledger_command
from bot.config import Settings
from bot.errors import UserError
from bot.ledger.io import import_sample
from bot.ledger.queries import city_figures, county_figures
from bot.services.project_views import TimelineEntry, timeline
from bot.services.reports import PhotoInput, ReportInput, save_report
from bot.store.db import make_engine, make_sessionmaker
from bot.store.models import Photo, Project, Report, utcnow
from bot.texts import render
from tests import factories
from tests.conftest import empty_pg_database, make_settings, need_postgres

SH = ZoneInfo("Asia/Shanghai")


def parse(*argv: str) -> Any:
    return build_parser("zh").parse_args(list(argv))


async def run(settings: Settings, *argv: str) -> int:
    return await backup_command.main(parse(*argv), settings)


async def figures(session: AsyncSession) -> tuple[Any, ...]:
    """What `qingshui stats` prints: the city's totals and one row per county."""
    return (await city_figures(session), tuple(await county_figures(session)))


@dataclass
class Reporter:
    """A contact reporting with a photo, one project after another, through the real report service;
    after each saved report it notes the id and the ledger's figures at that moment."""

    sessionmaker: async_sessionmaker[AsyncSession]
    data_dir: Path
    person_id: int

    def __post_init__(self) -> None:
        self.after: dict[int, tuple[Any, ...]] = {}
        self.stop = asyncio.Event()
        self.saved = asyncio.Condition()

    async def run(self) -> None:
        async with self.sessionmaker() as s:
            ids = list(await s.scalars(select(Project.id).where(Project.status != "completed").order_by(Project.id)))
        n = 0
        while not self.stop.is_set():
            async with self.sessionmaker() as s:
                project = await s.get(Project, ids[n % len(ids)])
                assert project is not None
                relative = f"photos/{project.code}/report-{n}.jpg"
                (self.data_dir / relative).parent.mkdir(parents=True, exist_ok=True)
                (self.data_dir / relative).write_bytes(f"photo {n} of {project.code}".encode() * 50)
                if project.status == "completed":
                    data = ReportInput(no_change=True, text=f"第 {n} 次：无变化")
                else:  # started, then forward; every third report completes a project: `stats` moves
                    progress = 100 if n % 3 == 2 else min(99, project.progress + 5)
                    data = ReportInput(progress=progress, text=f"第 {n} 次：进度 {progress}%")
                data = ReportInput(**{**data.__dict__, "photos": (PhotoInput(f"file-{n}", f"u{n}", relative),)})
                report = await save_report(s, project, data, person_id=self.person_id, now=utcnow(), tz=SH)
                assert report is not None
                self.after[report.id] = await figures(s)
            async with self.saved:
                self.saved.notify_all()
            n += 1
            await asyncio.sleep(0)

    async def until(self, count: int) -> None:
        async with asyncio.timeout(60), self.saved:
            await self.saved.wait_for(lambda: len(self.after) >= count)


async def dossiers(session: AsyncSession) -> dict[str, list[TimelineEntry]]:
    return {p.code: await timeline(session, p, tz=SH) for p in await session.scalars(select(Project))}


async def test_a_backup_taken_while_reports_are_saved_restores_one_consistent_moment(
    sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = make_settings(sqlite_url, tmp_path / "source")
    engine = make_engine(sqlite_url)
    db = make_sessionmaker(engine)
    await import_sample(db)
    async with db() as s:
        contact = await factories.person(s, county_row=None, telegram_id=5001, name="王联络")
        await s.commit()
    reporter = Reporter(db, source.data_dir, contact.id)
    reporting = asyncio.create_task(reporter.run())
    try:
        await reporter.until(5)  # reports are being saved ...
        archive = tmp_path / "qingshui-backup.tar.gz"
        assert await run(source, "backup", str(archive)) == 0  # ... while the backup runs
        saved_by_backup_end = len(reporter.after)
        await reporter.until(saved_by_backup_end + 3)  # and go on after it
    finally:
        reporter.stop.set()
        await reporting
    assert "已备份到" in capsys.readouterr().out

    target = make_settings(f"sqlite+aiosqlite:///{tmp_path / 'elsewhere' / 'qingshui.db'}", tmp_path / "elsewhere")
    assert await run(target, "restore", str(archive)) == 0
    assert "数据库已升级到最新结构" in capsys.readouterr().out

    restored_file = tmp_path / "elsewhere" / "qingshui.db"
    with sqlite3.connect(restored_file) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("SELECT count(*) FROM reports WHERE project_id NOT IN (SELECT id FROM projects)"
                            ).fetchone() == (0,)
    engine_back = make_engine(target.db_url)
    try:
        async with db() as s, make_sessionmaker(engine_back)() as r:
            source_reports = list(await s.scalars(select(Report.id).order_by(Report.id)))
            restored_reports = list(await r.scalars(select(Report.id).order_by(Report.id)))
            moment = restored_reports[-1]
            # one moment: every report up to the last one restored, none after it, and some came after
            assert restored_reports == [i for i in source_reports if i <= moment]
            assert len(restored_reports) < len(source_reports)
            # the ledger's figures are those the source had right after that report was saved
            assert await figures(r) == reporter.after[moment]
            # each project's dossier is the source's, without what came after that moment
            original, restored = await dossiers(s), await dossiers(r)
            assert restored.keys() == original.keys()
            for code, entries in original.items():
                assert restored[code] == [e for e in entries if e.report is None or e.report.id <= moment], code
            photos = list(await r.scalars(select(Photo).order_by(Photo.id)))
    finally:
        await engine_back.dispose()
        await engine.dispose()
    assert len(photos) == len(restored_reports)
    for photo in photos:  # every restored report's photo is there, the same bytes
        assert (target.data_dir / photo.path).read_bytes() == (source.data_dir / photo.path).read_bytes()

    # `qingshui stats` on the restored instance prints the city line the source had at that moment
    assert await ledger_command.main(parse("stats"), target) == 0
    city = reporter.after[moment][0]
    assert render("zh", "cli_ledger.stats_title", total=city.total, completed=city.completed, started=city.started,
                  not_started=city.not_started, completion_rate=city.completion_rate,
                  start_rate=city.start_rate).strip() in capsys.readouterr().out


async def test_restore_refuses_a_data_dir_that_is_not_empty(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = make_settings(db_url, tmp_path / "source")
    (source.data_dir / "photos" / "JZ-001").mkdir(parents=True)
    (source.data_dir / "photos" / "JZ-001" / "a.jpg").write_bytes(b"jpeg")
    archive = tmp_path / "b.tar.gz"
    assert await run(source, "backup", str(archive)) == 0
    busy = tmp_path / "busy"
    (busy / "photos").mkdir(parents=True)
    (busy / "photos" / "mine.jpg").write_bytes(b"someone else's")
    target = make_settings(f"sqlite+aiosqlite:///{busy / 'qingshui.db'}" if "sqlite" in db_url else db_url, busy)
    with pytest.raises(UserError) as refused:
        await run(target, "restore", str(archive))
    assert refused.value.exit_code == 2
    assert str(refused.value) == ("DATA_DIR（" + str(busy) + "）不是空的，恢复只写入空目录："
                                  "请把 DATA_DIR 指向一个新的空目录后再试")
    assert sorted(p.name for p in busy.rglob("*")) == ["mine.jpg", "photos"]  # nothing touched


@pytest.mark.parametrize("content", [b"", b"not an archive at all", "tar without manifest", "someone's manifest"])
async def test_restore_refuses_a_file_that_is_not_one_of_our_archives(
    sqlite_url: str, tmp_path: Path, content: bytes | str
) -> None:
    bad = tmp_path / "bad.tar.gz"
    if isinstance(content, bytes):
        bad.write_bytes(content)
    else:
        (tmp_path / "manifest.json").write_text('{"format": "other", "version": 1}')
        (tmp_path / "notes.txt").write_text("hello")
        with tarfile.open(bad, "w:gz") as tar:
            tar.add(tmp_path / ("notes.txt" if content.startswith("tar") else "manifest.json"),
                    arcname="notes.txt" if content.startswith("tar") else "manifest.json")
    target = make_settings(f"sqlite+aiosqlite:///{tmp_path / 'new' / 'qingshui.db'}", tmp_path / "new",
                           default_language="en")
    with pytest.raises(UserError) as refused:
        await run(target, "restore", str(bad))
    assert refused.value.exit_code == 1
    assert str(refused.value) == f"{bad} is not a Qingshui backup archive (or it is damaged); nothing was restored"
    assert not (tmp_path / "new").exists() or not any((tmp_path / "new").iterdir())


async def test_an_archive_with_a_path_outside_data_dir_is_refused(sqlite_url: str, tmp_path: Path) -> None:
    source = make_settings(sqlite_url, tmp_path / "source")
    archive = tmp_path / "b.tar.gz"
    assert await run(source, "backup", str(archive)) == 0
    with tarfile.open(archive, "r:gz") as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]  # type: ignore[union-attr]
    (tmp_path / "evil.txt").write_text("x")
    with tarfile.open(archive, "w:gz") as tar:
        for member, body in members:
            tar.addfile(member, io.BytesIO(body))
        tar.add(tmp_path / "evil.txt", arcname="files/../../escaped.txt")
    target = make_settings(f"sqlite+aiosqlite:///{tmp_path / 'new' / 'qingshui.db'}", tmp_path / "new")
    with pytest.raises(UserError):
        await run(target, "restore", str(archive))
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "new" / "qingshui.db").exists()


@pytest.fixture
async def pg_url(_pg_database: str) -> str:
    need_postgres()
    await empty_pg_database(_pg_database)
    return _pg_database


@pytest.mark.postgres
async def test_on_postgresql_backup_keeps_the_photos_and_points_to_pg_dump(
    pg_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = make_settings(pg_url, tmp_path / "source", default_language="en")
    await import_sample(make_sessionmaker(engine := make_engine(pg_url)))
    await engine.dispose()
    (source.data_dir / "photos" / "JZ-001").mkdir(parents=True)
    (source.data_dir / "photos" / "JZ-001" / "a.jpg").write_bytes(b"jpeg bytes")
    archive = tmp_path / "photos.tar.gz"
    assert await run(source, "backup", str(archive)) == 0
    out = capsys.readouterr().out
    assert "back it up with pg_dump -Fc" in out and "1 files" in out
    with tarfile.open(archive) as tar:
        assert "database/qingshui.db" not in tar.getnames()

    target = make_settings(pg_url, tmp_path / "elsewhere", default_language="en")
    assert await run(target, "restore", str(archive)) == 0
    assert "with pg_restore" in capsys.readouterr().out
    assert (target.data_dir / "photos" / "JZ-001" / "a.jpg").read_bytes() == b"jpeg bytes"
    # a SQLite instance does not take a PostgreSQL archive (it holds no database)
    sqlite_target = make_settings(f"sqlite+aiosqlite:///{tmp_path / 'lite' / 'q.db'}", tmp_path / "lite")
    with pytest.raises(UserError) as refused:
        await run(sqlite_target, "restore", str(archive))
    assert refused.value.exit_code == 2 and "postgresql" in str(refused.value)


def test_the_command_line_backs_up_and_restores_into_a_new_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """What an operator types: `qingshui backup`, then `qingshui restore` with DATA_DIR on a new empty folder
    (the checks every command makes first must not create the database restore expects to be absent)."""
    from bot.__main__ import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("DEFAULT_LANGUAGE", "zh")
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "old"))
    assert main(["import", "--sample"]) == 0
    assert main(["backup", str(tmp_path / "backup.tar.gz")]) == 0
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "new"))
    assert main(["restore", str(tmp_path / "backup.tar.gz")]) == 0
    capsys.readouterr()
    assert main(["stats"]) == 0
    assert "完工率 64%，开工率 93%" in capsys.readouterr().out
