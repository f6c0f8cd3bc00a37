"""Backup and restore of one Qingshui instance as a single .tar.gz archive (README "Backup").

The archive holds `manifest.json` (what it is: format, version, date, database kind, schema revision,
counts), for SQLite `database/qingshui.db` — an online copy made with SQLite's backup API in one step,
so it is one consistent moment of the database even while the service writes (WAL: the writers are not
stopped) — and under `files/` what a restore needs from DATA_DIR: the report photos (`photos/`) and the
digest files that queued, unsent messages still name. Exports and the demo folder are left out.

The database is copied first, the files after it: a photo is stored before the report naming it is
saved, so every photo the copied database names is there. On PostgreSQL the database is pg_dump's
(`pg_dump -Fc` / `pg_restore`); the archive then holds the files only.

Restore goes into an empty DATA_DIR only, checks the archive is ours and the copy sound before putting
anything in place, and brings the schema to head afterwards (SQLite). Every problem is a `Refused` with
a template code; the command line says it in one line.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import shutil
import sqlite3
import tarfile
import tempfile
import zlib
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from bot.config import Settings
from bot.domain.clock import utcnow
from bot.domain.states import OutboxState
from bot.store.db import make_engine, make_sessionmaker, migrate
from bot.store.models import Outbox, Person, Photo, Project, Report

FORMAT = "qingshui-backup"
VERSION = 1
MANIFEST = "manifest.json"
DATABASE = "database/qingshui.db"
FILES = "files"
KEPT_FOLDERS = ("photos",)  # under DATA_DIR, kept whole
SQLITE_BUSY_SECONDS = 30.0


class Refused(Exception):
    """A backup or restore cannot go ahead; `code` names the text (cli_backup.<code>) saying why."""

    def __init__(self, code: str, exit_code: int = 1, **detail: Any) -> None:
        super().__init__(code)
        self.code, self.exit_code, self.detail = code, exit_code, detail


@dataclass
class Manifest:
    database: str  # sqlite | postgresql
    created_at: str
    schema: str | None = None  # the Alembic revision of the copied database
    counts: dict[str, int] = field(default_factory=dict)
    files: int = 0
    qingshui: str = ""
    format: str = FORMAT
    version: int = VERSION

    def to_json(self) -> bytes:
        return json.dumps(self.__dict__, ensure_ascii=False, indent=2).encode()


def database_kind(settings: Settings) -> str:
    return "sqlite" if make_url(settings.db_url).get_backend_name() == "sqlite" else "postgresql"


def sqlite_path(settings: Settings) -> Path:
    database = make_url(settings.db_url).database
    if not database or database == ":memory:":
        raise Refused("memory_database", exit_code=2)
    return Path(database)


def _version() -> str:
    try:
        return metadata.version("qingshui")
    except metadata.PackageNotFoundError:
        return ""


# ---------------------------------------------------------------------------------------------- backup


async def backup(settings: Settings, target: Path) -> Manifest:
    """Write the archive to `target` (through a temporary file beside it, so a failed run leaves no
    half archive). The database is brought to head first, like every command does."""
    kind = database_kind(settings)
    await migrate(settings.db_url)
    manifest = Manifest(database=kind, created_at=utcnow().isoformat(timespec="seconds"), qingshui=_version())
    with tempfile.TemporaryDirectory(prefix="qingshui-backup-") as scratch:
        copy: Path | None = None
        if kind == "sqlite":
            copy = Path(scratch) / "qingshui.db"
            await asyncio.to_thread(_online_copy, sqlite_path(settings), copy)
            url = f"sqlite+aiosqlite:///{copy}"
        else:
            url = settings.db_url
        manifest.counts, named = await _inventory(url)
        files = _files_to_keep(settings.data_dir, named)
        manifest.files = len(files)
        if copy is not None:
            manifest.schema = _sqlite_revision(copy)
        try:
            await asyncio.to_thread(_write_archive, target, manifest, copy, settings.data_dir, files)
        except OSError as exc:
            raise Refused("cannot_write", path=str(target), reason=exc.strerror or str(exc)) from None
    return manifest


def _online_copy(source: Path, copy: Path) -> None:
    """One consistent moment of a live SQLite database, by its backup API in a single step."""
    if not source.is_file():
        raise Refused("no_database", path=str(source))
    src = sqlite3.connect(source, timeout=SQLITE_BUSY_SECONDS)
    dst = sqlite3.connect(copy)
    try:
        src.backup(dst)  # pages=-1: all of it under one read transaction
        dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file in the archive
    finally:
        dst.close()
        src.close()


def _sqlite_revision(path: Path) -> str | None:
    conn = sqlite3.connect(path)
    try:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.DatabaseError:
        return None
    finally:
        conn.close()
    return str(row[0]) if row else None


async def _inventory(url: str) -> tuple[dict[str, int], set[str]]:
    """Counts for the manifest, and the files under DATA_DIR that unsent outbox rows name."""
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as session:
            counts = {
                name: int(await session.scalar(select(func.count()).select_from(model)) or 0)
                for name, model in (("projects", Project), ("reports", Report), ("photos", Photo),
                                    ("people", Person))
            }
            waiting = await session.execute(
                select(Outbox.payload).where(Outbox.state.in_((OutboxState.PENDING, OutboxState.SENDING)),
                                             Outbox.method.in_(("photo", "document"))))
            named = {str(p["path"]) for (p,) in waiting if isinstance(p, dict) and p.get("path")}
    finally:
        await engine.dispose()
    return counts, named


def _files_to_keep(data_dir: Path, named: set[str]) -> list[str]:
    """Paths relative to DATA_DIR (POSIX): everything in KEPT_FOLDERS, plus the named files that exist."""
    kept: set[str] = set()
    for folder in KEPT_FOLDERS:
        root = data_dir / folder
        if root.is_dir():
            kept.update(p.relative_to(data_dir).as_posix() for p in root.rglob("*") if p.is_file())
    kept.update(path for path in named if _safe(path) and (data_dir / path).is_file())
    return sorted(kept)


def _write_archive(target: Path, manifest: Manifest, copy: Path | None, data_dir: Path, files: list[str]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    try:
        with tarfile.open(partial, "w:gz") as archive:
            body = manifest.to_json()
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mtime = len(body), int(utcnow().timestamp())
            archive.addfile(info, io.BytesIO(body))
            if copy is not None:
                archive.add(copy, arcname=DATABASE, recursive=False)
            for relative in files:
                with contextlib.suppress(FileNotFoundError):  # removed meanwhile (a cancelled report's photo)
                    archive.add(data_dir / relative, arcname=f"{FILES}/{relative}", recursive=False)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------- restore


def _safe(relative: str) -> bool:
    path = PurePosixPath(relative)
    return bool(relative) and not path.is_absolute() and ".." not in path.parts and "\\" not in relative


def read_manifest(archive_path: Path) -> Manifest:
    """The manifest of one of our archives; Refused('not_ours') for anything else."""
    if not archive_path.is_file():
        raise Refused("no_file", path=str(archive_path))
    try:
        with tarfile.open(archive_path, "r:*") as archive:
            member = archive.extractfile(MANIFEST)
            data = json.loads(member.read()) if member is not None else None
    except (tarfile.TarError, KeyError, OSError, EOFError, ValueError, zlib.error):
        raise Refused("not_ours", path=str(archive_path)) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("version"), int):
        raise Refused("not_ours", path=str(archive_path))
    if data["version"] > VERSION:
        raise Refused("too_new", path=str(archive_path), version=data["version"])
    known = set(Manifest.__dataclass_fields__)
    try:
        return Manifest(**{k: v for k, v in data.items() if k in known})
    except TypeError:
        raise Refused("not_ours", path=str(archive_path)) from None


def _is_empty(folder: Path) -> bool:
    return not folder.exists() or (folder.is_dir() and not any(folder.iterdir()))


async def restore(settings: Settings, archive_path: Path) -> Manifest:
    """Load the archive into an empty DATA_DIR (and, for SQLite, the database file where DATABASE_URL
    points), then bring the schema to head. Nothing is put in place unless the whole archive is sound."""
    manifest = read_manifest(archive_path)
    kind = database_kind(settings)
    if manifest.database != kind:
        raise Refused("wrong_kind", exit_code=2, archive=manifest.database, here=kind)
    data_dir = settings.data_dir
    if not _is_empty(data_dir):
        raise Refused("not_empty", exit_code=2, path=str(data_dir))
    db_file = sqlite_path(settings) if kind == "sqlite" else None
    if db_file is not None and db_file.exists():
        raise Refused("database_exists", exit_code=2, path=str(db_file))

    data_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".restoring-", dir=data_dir.parent))
    try:
        await asyncio.to_thread(_unpack, archive_path, staging, manifest)
        if db_file is not None:
            _check_copy(staging / DATABASE, archive_path)
        # the archive is sound: put it in place
        files = staging / FILES
        if files.is_dir():
            for entry in files.iterdir():
                shutil.move(str(entry), str(data_dir / entry.name))
        if db_file is not None:
            db_file.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(staging / DATABASE), str(db_file))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if db_file is not None:
        await migrate(settings.db_url)  # only now: a command run earlier would have made an empty database
    return manifest


def _unpack(archive_path: Path, staging: Path, manifest: Manifest) -> None:
    try:
        with tarfile.open(archive_path, "r:*") as archive:
            for member in archive:
                name = member.name
                if name == MANIFEST or member.isdir():
                    continue
                if not member.isfile() or not _safe(name) or not (
                        name == DATABASE or name.startswith(f"{FILES}/")):
                    raise Refused("not_ours", path=str(archive_path))
                if name == DATABASE and manifest.database != "sqlite":
                    raise Refused("not_ours", path=str(archive_path))
                target = staging / name
                target.parent.mkdir(parents=True, exist_ok=True)
                source = archive.extractfile(member)
                assert source is not None  # a regular file
                with source, target.open("wb") as out:
                    shutil.copyfileobj(source, out)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        if isinstance(exc, OSError) and not isinstance(exc, tarfile.TarError) and exc.errno is not None:
            raise Refused("cannot_write", path=str(staging.parent), reason=exc.strerror or str(exc)) from None
        raise Refused("not_ours", path=str(archive_path)) from None


def _check_copy(copy: Path, archive_path: Path) -> None:
    """The archived database is whole: SQLite's integrity_check says ok."""
    if not copy.is_file():
        raise Refused("not_ours", path=str(archive_path))
    conn = sqlite3.connect(copy)
    try:
        verdict = conn.execute("PRAGMA integrity_check").fetchone()
    except sqlite3.DatabaseError:
        verdict = None
    finally:
        conn.close()
    if not verdict or verdict[0] != "ok":
        raise Refused("damaged", path=str(archive_path))


async def restored_counts(settings: Settings) -> dict[str, int]:
    """The counts of the database now in place, to set beside the manifest's."""
    counts, _ = await _inventory(settings.db_url)
    return counts
