"""What a channel is sent, as outbox steps `(step, method, payload)`: the texts rendered from the
templates for the channel's kind (markdown for robots, HTML and plain text for e-mail) and cut under
the kind's size (README "Channels"). Jobs queue them; `channel test` sends them directly."""

from __future__ import annotations

import html
from typing import Any

from bot.channels.base import mask_target, split_bytes
from bot.channels.kinds import module
from bot.texts import render

Step = tuple[int | str, str, dict[str, Any]]


def _plain(text: str) -> str:
    """A title for a robot or a subject: no HTML escapes (the templates' shared labels are HTML)."""
    return html.unescape(text).strip()


def text_steps(kind: str, title: str, markdown: str) -> list[Step]:
    """A robot's text in as many messages as its size needs: steps 0, 1, …"""
    parts = split_bytes(markdown, module(kind).TEXT_BYTES)
    return [(index, "markdown", {"title": title, "text": part}) for index, part in enumerate(parts)]


def email_step(subject: str, html_body: str, plain: str, *, chart: str | None = None, ledger: str | None = None,
               filename: str = "") -> Step:
    return (0, "email", {"subject": subject, "html": html_body, "plain": plain, "inline": chart,
                         "attachment": ledger, "filename": filename})


def digest_steps(kind: str, lang: str, *, f: Any, limit: int, deadline: Any, chart: str | None,
                 ledger: str | None) -> list[Step]:
    """The weekly digest; WeCom gets the chart and workbook as two more messages, e-mail inline and attached.
    A chart or workbook that could not be built (None) is left out; the text still goes."""
    title = _plain(render(lang, "channel_digest.title", f=f))
    markdown = render(lang, "channel_digest.digest", f=f, kind=kind, limit=limit, deadline=deadline,
                      chart=chart is not None, ledger=ledger is not None)
    filename = _plain(render(lang, "channel_digest.ledger_filename", f=f))
    if kind == "email":
        body = render(lang, "channel_email.digest", f=f, limit=limit, deadline=deadline, chart=chart is not None,
                      ledger=ledger is not None)
        return [email_step(title, body, markdown, chart=chart, ledger=ledger, filename=filename)]
    steps = text_steps(kind, title, markdown)
    if module(kind).FILES:
        if chart:
            steps.append(("chart", "image", {"path": chart}))
        if ledger:
            steps.append(("ledger", "file", {"path": ledger, "filename": filename}))
    return steps


def alert_steps(kind: str, lang: str, *, a: dict[str, Any], macro: str) -> list[Step]:
    """An alert (`problem`, `worse`, `resolved`) about one project."""
    title = _plain(render(lang, "channel_alerts.title", a=a, macro=macro))
    markdown = render(lang, f"channel_alerts.{macro}", a=a)
    if kind == "email":
        return [email_step(title, render(lang, "channel_email.alert", a=a, title=title), markdown)]
    return text_steps(kind, title, markdown)


def reminder_steps(kind: str, lang: str, *, county: str, period: str, projects: list[dict[str, Any]], more: int,
                   deadline: Any, followup: bool) -> list[Step]:
    """The month's list of a county's projects still missing their update."""
    title = _plain(render(lang, "channel_reminders.title", county=county, period=period))
    markdown = render(lang, "channel_reminders.reminder", county=county, period=period, projects=projects,
                      more=more, deadline=deadline, followup=followup)
    if kind == "email":
        body = render(lang, "channel_email.reminder", title=title, projects=projects, more=more, deadline=deadline)
        return [email_step(title, body, markdown)]
    return text_steps(kind, title, markdown)


def test_steps(kind: str, lang: str, channel: str) -> list[Step]:
    title = _plain(render(lang, "channel_test.title", channel=channel))
    markdown = render(lang, "channel_test.test", channel=channel)
    if kind == "email":
        return [email_step(title, render(lang, "channel_email.test", channel=channel), markdown)]
    return text_steps(kind, title, markdown)


def listing_rows(listed: list[Any], tz: Any) -> list[dict[str, Any]]:
    """What `channel list` and /channels show of each channel: the target masked, the secret as set or not."""
    return [
        {"name": item.channel.name, "kind": item.channel.kind, "county": item.county,
         "sends": item.channel.sends.split(","), "target": mask_target(item.channel.kind, item.channel.target),
         "secret": bool(item.channel.secret),
         "last_ok": item.channel.last_ok_at.astimezone(tz) if item.channel.last_ok_at else None,
         "last_error": item.channel.last_error,
         "last_error_at": item.channel.last_error_at.astimezone(tz) if item.channel.last_error_at else None,
         "pending": item.pending, "dead": item.dead}
        for item in listed
    ]
