"""E-mail: an HTML body with a plain-text alternative, the chart inline, the workbook attached, sent
through SMTP_URL (`smtp://user:password@host:port` uses STARTTLS whenever the server offers it,
`smtps://` TLS from the start) from SMTP_FROM, to the channel's comma-separated addresses (aiosmtplib)."""

from __future__ import annotations

import asyncio
import mimetypes
import urllib.parse
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

import aiosmtplib

from bot.channels.base import REQUEST_SECONDS, Delivery, Outcome, Target

KIND = "email"
LIMITS = ((10, 60.0),)  # a mail server is no robot, but an office mailbox should not see a burst either
TEXT_BYTES = 1_000_000
FILES = True
XLSX = ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet")


def addresses(target: str) -> list[str]:
    return [a.strip() for a in target.replace(";", ",").replace("，", ",").split(",") if a.strip()]


def valid_addresses(target: str) -> bool:
    found = addresses(target)
    return bool(found) and all(_address_ok(a) for a in found)


def _address_ok(address: str) -> bool:
    try:
        Address(addr_spec=address)
    except (ValueError, IndexError):
        return False
    return "@" in address


def build(payload: dict[str, Any], sender: str, to: list[str], ctx: Delivery) -> EmailMessage:
    """The message: text/plain and text/html alternatives, the chart related to the HTML by its
    Content-ID, the workbook attached."""
    message = EmailMessage()
    message["Subject"] = payload["subject"]
    message["From"] = sender
    message["To"] = ", ".join(to)
    message.set_content(payload["plain"])
    html = payload["html"]
    chart_cid = make_msgid(domain="qingshui")
    if payload.get("inline"):
        html = html.replace("cid:chart", f"cid:{chart_cid[1:-1]}")
    message.add_alternative(html, subtype="html")
    if payload.get("inline"):
        html_part = message.get_payload()[1]  # type: ignore[index]
        html_part.add_related(ctx.file(payload["inline"]).read_bytes(), "image", "png", cid=chart_cid,
                              filename="chart.png")
    if payload.get("attachment"):
        path = ctx.file(payload["attachment"])
        guessed = mimetypes.guess_type(path.name)[0]
        maintype, subtype = guessed.split("/", 1) if guessed else XLSX
        message.add_attachment(path.read_bytes(), maintype=maintype, subtype=subtype,
                               filename=payload.get("filename") or path.name)
    return message


async def deliver(channel: Target, method: str, payload: dict[str, Any], ctx: Delivery) -> Outcome:
    if method != "email":
        return Outcome.dead(f"e-mail cannot send {method!r}")
    if not ctx.smtp_url or not ctx.smtp_from:
        return Outcome.dead("SMTP_URL or SMTP_FROM is not set", tell_admins=True)
    url = urllib.parse.urlsplit(ctx.smtp_url)
    secure = url.scheme == "smtps"
    try:  # reads the chart and the workbook: off the loop the chat uses
        message = await asyncio.to_thread(build, payload, ctx.smtp_from, addresses(channel.target), ctx)
    except OSError as exc:
        return Outcome.dead(f"file not found: {exc}")
    try:
        errors, answer = await aiosmtplib.send(
            message, hostname=url.hostname or "localhost", port=url.port or (465 if secure else 587),
            username=urllib.parse.unquote(url.username) if url.username else None,
            password=urllib.parse.unquote(url.password) if url.password else None,
            use_tls=secure, start_tls=None if not secure else False, timeout=REQUEST_SECONDS,
        )
    except aiosmtplib.SMTPAuthenticationError as exc:
        return Outcome.dead(f"{exc.code} {exc.message}", tell_admins=True)
    except aiosmtplib.SMTPRecipientsRefused as exc:
        return Outcome.dead("; ".join(f"{e.recipient}: {e.code} {e.message}" for e in exc.recipients),
                            tell_admins=True)
    except aiosmtplib.SMTPResponseException as exc:
        reason = f"{exc.code} {exc.message}"
        return Outcome.retry(reason) if 400 <= exc.code < 500 else Outcome.dead(reason)
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        return Outcome.retry(f"{type(exc).__name__}: {exc}")
    if errors:  # some addresses refused, others took it: sent, and the refusals shown in `channel list`
        return Outcome.sent("; ".join(f"{a}: {e}" for a, e in errors.items()))
    return Outcome.sent(answer)
