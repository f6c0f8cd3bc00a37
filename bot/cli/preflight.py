"""Before a command starts: is each setting it depends on usable, not just well-formed?

`bot/config.py` rejects what is malformed when the settings load; this asks the world: can DATA_DIR
be written, does the database answer and exist, does Redis answer (for `run`). Each failure is a
SettingsError naming the setting and what to do, worded by templates/<lang>/cli_settings.txt; the
original exception is kept as its cause, shown with --debug or LOG_LEVEL=DEBUG."""

from __future__ import annotations

import asyncio
import os

from bot.config import Settings, SettingsError, settings_error

CONNECT_SECONDS = 10.0  # a server that swallows packets is reported after this long


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and every cause or context behind it (drivers wrap one another's errors)."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    if isinstance(exc, TimeoutError):
        return f"timeout {CONNECT_SECONDS:.0f} s"
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def check_data_dir(settings: Settings) -> None:
    """DATA_DIR exists (created when missing) and a file can be written in it."""
    path = settings.data_dir
    probe = path / f".qingshui-write-check-{os.getpid()}"
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise settings_error(settings.default_language, "DATA_DIR", "data_dir_unwritable",
                             path=str(path), reason=_reason(exc)) from exc


async def check_database(settings: Settings) -> None:
    """Open one connection to DATABASE_URL (or the SQLite file in DATA_DIR) and run SELECT 1."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from bot.store.db import make_engine

    lang, url = settings.default_language, make_url(settings.db_url)
    try:
        engine = make_engine(settings.db_url)
    except OSError as exc:  # the SQLite file's folder cannot be made
        raise settings_error(lang, "DATABASE_URL", "sqlite_unopenable", path=str(url.database),
                             reason=_reason(exc)) from exc
    try:
        async with asyncio.timeout(CONNECT_SECONDS), engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception as exc:  # every way a database can fail is told in words below
        raise _database_problem(exc, settings) from exc
    finally:
        await engine.dispose()


def _database_problem(exc: BaseException, settings: Settings) -> SettingsError:
    from sqlalchemy.engine import make_url

    lang, url = settings.default_language, make_url(settings.db_url)
    names = {type(e).__name__ for e in _chain(exc)}
    where = f"{url.host or 'localhost'}:{url.port or 5432}"
    if url.get_backend_name() == "sqlite":
        return settings_error(lang, "DATABASE_URL", "sqlite_unopenable", path=str(url.database),
                              reason=_reason(exc))
    if "InvalidCatalogNameError" in names:
        return settings_error(lang, "DATABASE_URL", "database_missing", database=url.database or "", where=where)
    if names & {"InvalidPasswordError", "InvalidAuthorizationSpecificationError"}:
        return settings_error(lang, "DATABASE_URL", "database_auth", user=url.username or "")
    unreachable = next((e for e in _chain(exc) if isinstance(e, OSError | TimeoutError)), None)
    if unreachable is not None:
        return settings_error(lang, "DATABASE_URL", "database_unreachable", where=where,
                              reason=_reason(unreachable))
    return settings_error(lang, "DATABASE_URL", "database_unusable", reason=_reason(exc))


async def check_redis(settings: Settings) -> None:
    """REDIS_URL answers a PING (only `run` uses Redis)."""
    if not settings.redis_url:
        return
    from redis.asyncio import Redis
    from redis.connection import parse_url

    parts = parse_url(settings.redis_url)
    where = parts.get("path") or f"{parts.get('host', 'localhost')}:{parts.get('port', 6379)}"
    client = Redis.from_url(settings.redis_url, socket_connect_timeout=CONNECT_SECONDS)
    try:
        async with asyncio.timeout(CONNECT_SECONDS + 1):
            await client.ping()
    except Exception as exc:  # refused, unknown host, auth, timeout: all one answer
        raise settings_error(settings.default_language, "REDIS_URL", "redis_unreachable", where=where,
                             reason=_reason(exc)) from exc
    finally:
        await client.aclose()


async def preflight(settings: Settings, command: str) -> None:
    """What `command` needs, cheapest first: the token (run), DATA_DIR, the database, Redis (run)."""
    if command == "run":
        settings.require_token()
    check_data_dir(settings)
    if command == "demo":  # the demo keeps its own SQLite database in its output folder
        return
    if command == "restore":  # connecting would create the SQLite file restore must find absent
        return
    await check_database(settings)
    if command == "run":
        await check_redis(settings)
