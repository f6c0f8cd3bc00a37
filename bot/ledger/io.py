"""The ledger file in and out: what the rest of Qingshui calls.

- `import_ledger(session, path, …)`: all or nothing. A file with any bad row raises LedgerRejected
  listing every problem (render each with ledger_issues.describe) and changes nothing; so does a file
  that adds a project another import, running at the same moment, has just added.
- `import_sample(sessionmaker_or_session)`: the shipped sample ledger, through the same path.
- `export_ledger(session, path, county_id=…, lang=…)`: the workbook (or CSV) of the ledger.
- `write_template(session, path, lang=…)`: the empty workbook to fill in."""

from __future__ import annotations

import asyncio
import datetime as dt
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.domain.clock import utcnow
from bot.ledger.export import export_ledger, milestones_csv_path
from bot.ledger.format import county_key
from bot.ledger.issues import Issue, LedgerRejected, describe
from bot.ledger.read import Progress, read_ledger_file
from bot.ledger.template import write_template
from bot.ledger.validate import check_rows, ordered, parse_rows
from bot.ledger.write import ImportResult, load_counties, load_projects, write_plan

CITY_TZ = ZoneInfo("Asia/Shanghai")
SAMPLE_FILE = "ledger.xlsx"


def sample_path() -> Path:
    """The sample ledger shipped with Qingshui (44 projects, 28 completed, 41 started)."""
    return Path(str(resources.files("bot") / "sample" / SAMPLE_FILE))


async def import_ledger(
    session: AsyncSession,
    path: Path,
    *,
    milestones_path: Path | None = None,
    new_counties: bool = False,
    now: dt.datetime | None = None,
    tz: ZoneInfo = CITY_TZ,
    progress: Progress | None = None,
) -> ImportResult:
    """Check the whole file, then write it in one transaction and commit.

    `now` stamps the dossier entries; its date in `tz` is "today" for the rule that actual dates
    and reached milestones are not in the future."""
    now = now or utcnow()
    today = now.astimezone(tz).date()
    raw = await asyncio.to_thread(read_ledger_file, path, milestones_path, progress)
    parsed, issues = parse_rows(raw)
    existing = await load_projects(session, parsed.codes)
    counties = await load_counties(session)
    plan, more = check_rows(
        parsed,
        existing={code: stored.values for code, stored in existing.items()},
        counties={county_key(c.name): c.name for c in counties},
        today=today,
        allow_new_counties=new_counties,
    )
    if issues or more:
        raise LedgerRejected(ordered([*issues, *more], parsed), plan.warnings)
    try:
        result = await write_plan(session, plan, existing, counties, now=now, progress=progress)
        await session.commit()
        session.expire_all()  # the writes bypassed the ORM: objects the caller holds are stale
    except IntegrityError:
        # Another import wrote a project (or county) this file adds after the check above: nothing of
        # this file was written. Said like any other rejected file, naming the codes now taken.
        await session.rollback()
        new_codes = [row.code for row in plan.projects if row.code not in existing]
        taken = sorted(await load_projects(session, new_codes))
        raise LedgerRejected([Issue("written_meanwhile", value=", ".join(taken[:5]) or None,
                                    detail={"more": max(0, len(taken) - 5)})], plan.warnings) from None
    except BaseException:
        await session.rollback()
        raise
    return result


async def import_sample(
    target: async_sessionmaker[AsyncSession] | AsyncSession,
    *,
    now: dt.datetime | None = None,
    tz: ZoneInfo = CITY_TZ,
) -> ImportResult:
    """Load the sample ledger (creating Jinzhong's 11 counties if missing). Its facts are as of
    2026-10-31, so `now` must not be earlier than that."""
    if isinstance(target, AsyncSession):
        return await import_ledger(target, sample_path(), new_counties=True, now=now, tz=tz)
    async with target() as session:
        return await import_ledger(session, sample_path(), new_counties=True, now=now, tz=tz)


__all__ = [
    "ImportResult",
    "Issue",
    "LedgerRejected",
    "describe",
    "export_ledger",
    "import_ledger",
    "import_sample",
    "milestones_csv_path",
    "sample_path",
    "write_template",
]
