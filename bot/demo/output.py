"""What the offline demo leaves behind: the summary it prints, OUT/index.html (the month as a
timeline, linking every file in OUT/messages) and OUT/timeline.json (the same, for scripts)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any
from zoneinfo import ZoneInfo

from bot.demo.runner import DemoResult, Entry
from bot.demo.story import FIRST_DAY, LAST_DAY, PERIOD, Cast
from bot.domain.rates import Totals
from bot.domain.states import Role
from bot.texts import render

INDEX = "index.html"
TIMELINE = "timeline.json"
MESSAGES = "messages"
MAX_PROBLEM_LINES = 10


def summary_text(result: DemoResult, lang: str) -> str:
    """The summary printed at the end (plain text, from templates/<lang>/cli_demo.txt)."""
    roles = [p.role for p in result.people]
    counts = result.counts()
    problems = [render(lang, "cli_demo.rejected", method=r.method, description=r.description)
                for r in result.rejected]
    problems += [render(lang, "cli_demo.undelivered", line=line) for line in result.undelivered]
    problems += [render(lang, "cli_demo.error", line=line) for line in result.errors]
    shown = problems[:MAX_PROBLEM_LINES]
    s = {
        "first": FIRST_DAY, "last": LAST_DAY, "seconds": f"{result.seconds:.0f}",
        "contacts": roles.count(Role.CONTACT), "county_leaders": roles.count(Role.COUNTY_LEADER),
        "leaders": roles.count(Role.LEADER), "admins": roles.count(Role.ADMIN),
        "reports": result.reports, "reporters": result.reporters,
        "sent": sum(1 for e in result.entries if not e.incoming and not e.kind == "edit"),
        "c": counts, "before": result.before, "after": result.after, "index": str(result.index),
        "problems": shown, "more_problems": len(problems) - len(shown),
    }
    return render(lang, "cli_demo.summary", s=s)


def _who(people: dict[int, Cast], chat_id: int) -> dict[str, Any]:
    person = people.get(chat_id)
    if person is None:
        return {"name": str(chat_id), "role": "", "county": None}
    return {"name": person.name, "role": person.role, "county": person.county}


def _entry_view(e: Entry, people: dict[int, Cast], tz: ZoneInfo) -> dict[str, Any]:
    local = e.at.astimezone(tz)
    return {"at": local, "time": local.strftime("%H:%M"), "incoming": e.incoming, "kind": e.kind, "step": e.step,
            "text": e.text, "attachment": e.attachment, "buttons": e.buttons, "files": e.files,
            **_who(people, e.chat_id)}


def _days(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    days: dict[dt.date, list[dict[str, Any]]] = {}
    for e in entries:
        days.setdefault(e["at"].date(), []).append(e)
    return [{"date": day, "weekday": day.weekday(), "entries": rows} for day, rows in sorted(days.items())]


def _totals(t: Totals) -> dict[str, int]:
    return {"total": t.total, "completed": t.completed, "started": t.started,
            "completion_rate": t.completion_rate, "start_rate": t.start_rate}


def timeline_json(result: DemoResult, tz: ZoneInfo) -> dict[str, Any]:
    people = {p.telegram_id: p for p in result.people}
    return {
        "period": PERIOD,
        "people": [dataclasses.asdict(p) for p in result.people],
        "entries": [
            {"at": e.at.astimezone(tz).isoformat(), "chat_id": e.chat_id, **_who(people, e.chat_id),
             "incoming": e.incoming, "kind": e.kind, "step": e.step, "method": e.method, "text": e.text,
             "attachment": e.attachment, "buttons": e.buttons, "files": [f"{MESSAGES}/{name}" for name in e.files]}
            for e in result.entries
        ],
        "counts": dict(result.counts()),
        "rates": {"before": _totals(result.before), "after": _totals(result.after)},
        "reports": result.reports,
        "reporters": result.reporters,
        "rejected": [{"method": r.method, "description": r.description} for r in result.rejected],
        "undelivered": result.undelivered,
        "errors": result.errors,
        "seconds": round(result.seconds, 1),
    }


def write_pages(result: DemoResult, lang: str, tz: ZoneInfo) -> None:
    """OUT/index.html and OUT/timeline.json."""
    people = {p.telegram_id: p for p in result.people}
    page = {
        "period": PERIOD, "first": FIRST_DAY, "last": LAST_DAY, "summary": summary_text(result, lang),
        "people": result.people, "days": _days([_entry_view(e, people, tz) for e in result.entries]),
        "messages": MESSAGES, "timeline": TIMELINE, "loose": result.loose,
    }
    result.index.write_text(render(lang, "demo_page.page", p=page) + "\n", encoding="utf-8")
    (result.out / TIMELINE).write_text(
        json.dumps(timeline_json(result, tz), ensure_ascii=False, indent=1), encoding="utf-8")


__all__ = ["INDEX", "MESSAGES", "TIMELINE", "summary_text", "timeline_json", "write_pages"]
