"""The cockpit's web server (aiohttp), started by `qingshui run` on WEB_HOST:WEB_PORT (README "Cockpit").

Who is asking: a personal link `WEB_BASE_URL/?k=KEY` (bot.web.links) is checked, its key moved into a
cookie and the address replaced by one without it (so the key is not left in the history or sent as a
referrer); every later request carries the cookie. Inside Telegram (WEB_BASE_URL https) `/app` is the
Mini App: its page posts Telegram's initData to `/app/session`, checked with aiogram's
`safe_parse_webapp_init_data` against BOT_TOKEN, and gets the same cookie.

What they may see: bot.domain.access.can, as in the chat — a contact and a county leader their county
(its list, its projects, their photos, its ledger), leaders and admins the city and the bulletin."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import tempfile
from collections.abc import Awaitable, Callable
from functools import cache
from importlib import resources
from pathlib import Path
from urllib.parse import quote

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.domain.access import can, is_city_wide
from bot.domain.clock import Clock, utcnow
from bot.ledger.io import export_ledger
from bot.services.bulletin import build as build_bulletin
from bot.services.bulletin import due_month, write_docx
from bot.services.chart import cjk_font_path
from bot.services.project_views import project_by_code
from bot.store.models import Person
from bot.texts import LANGUAGES, render
from bot.web import links
from bot.web.charts import plan_chart, trend_chart
from bot.web.views import city_view, county_view, photo_of, project_view

log = logging.getLogger(__name__)
COOKIE = "qingshui_cockpit"
OPEN = ("/static/", "/app")  # served without a key
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SETTINGS = web.AppKey("settings", Settings)
SESSIONS = web.AppKey("sessionmaker", async_sessionmaker)
CLOCK = web.AppKey("clock", Callable)
PERSON = web.RequestKey("person", Person)  # who the key or cookie belongs to
SESSION = web.RequestKey("session", AsyncSession)  # open for the request
_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
            "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
                                       "script-src 'unsafe-inline'; img-src 'self'"}


def _html(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8", headers=_HEADERS)


def _lang(request: web.Request) -> str:
    person: Person | None = request.get(PERSON)
    if person is not None and person.language in LANGUAGES:
        return person.language
    return request.app[SETTINGS].default_language


def _refused(request: web.Request, reason: str, status: int = 403) -> web.Response:
    return _html(render(_lang(request), "web_common.refused", reason=reason), status)


def _set_key(response: web.StreamResponse, settings: Settings, key: str) -> None:
    """A session cookie: the key inside carries its own expiry, checked on every request."""
    secure = settings.web_base_url.startswith("https://")  # a Mini App is framed by Telegram: SameSite=None
    response.set_cookie(COOKIE, key, httponly=True, secure=secure, samesite="None" if secure else "Lax", path="/")


@web.middleware
async def who(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The person a link or cookie belongs to, in request[PERSON] with an open request[SESSION]."""
    app = request.app
    settings, now = app[SETTINGS], app[CLOCK]()
    if request.path.startswith(OPEN):
        return await handler(request)
    async with app[SESSIONS]() as session:
        from_link = request.query.get("k")
        key = from_link or request.cookies.get(COOKIE)
        if not key:
            return _refused(request, "forged")
        try:
            person = await links.holder(session, settings, key, now)
        except links.Refused as refused:
            response = _refused(request, refused.reason)
            response.del_cookie(COOKIE, path="/")
            return response
        if from_link:  # move the key into the cookie and out of the address
            rest = {k: v for k, v in request.query.items() if k != "k"}
            # the path as it came, still encoded, and always on this site: `/%2Fevil.example/` must not
            # become `//evil.example/`, which a browser would open as another host
            here = "/" + str(request.rel_url.with_query(rest or None)).lstrip("/")
            response = web.Response(status=302, headers={**_HEADERS, "Location": here})
            _set_key(response, settings, key)
            return response
        request[PERSON], request[SESSION] = person, session
        return await handler(request)


def _sees(person: Person, county_id: int | None) -> bool:
    return can(person.role, person.county_id, "see", county_id)


async def home(request: web.Request) -> web.StreamResponse:
    person: Person = request[PERSON]
    if not _sees(person, None):
        if person.county_id is None:
            return _refused(request, "scope")
        raise web.HTTPFound(f"/county/{person.county_id}")
    view = await city_view(request[SESSION], request.app[CLOCK](), request.app[SETTINGS])
    return _html(render(_lang(request), "web_city.city", v=view, chart=trend_chart(view.trend), person=person))


async def county(request: web.Request) -> web.StreamResponse:
    person: Person = request[PERSON]
    try:
        county_id = int(request.match_info["county_id"])
    except ValueError:
        return _refused(request, "missing", 404)
    if not _sees(person, county_id):
        return _refused(request, "scope")
    light = request.query.get("light")
    view = await county_view(request[SESSION], county_id, request.app[CLOCK](), request.app[SETTINGS],
                             light=light if light in ("red", "yellow", "green") else None,
                             missing_only=request.query.get("missing") == "1")
    if view is None:
        return _refused(request, "missing", 404)
    return _html(render(_lang(request), "web_county.county", v=view, person=person,
                        city_wide=is_city_wide(person.role)))


async def project(request: web.Request) -> web.StreamResponse:
    person: Person = request[PERSON]
    session: AsyncSession = request[SESSION]
    found = await project_by_code(session, request.match_info["code"])
    if found is None:
        return _refused(request, "missing", 404)
    if not _sees(person, found.county_id):
        return _refused(request, "scope")
    view = await project_view(session, found, request.app[CLOCK](), request.app[SETTINGS])
    p = view.card.project
    chart = plan_chart(p.planned_start, p.planned_finish, view.readings, view.card.forecast, view.today,
                       [(m.name, m.due, m.done) for m in view.card.milestones])
    return _html(render(_lang(request), "web_project.project", v=view, chart=chart, person=person,
                        city_wide=is_city_wide(person.role)))


async def photo(request: web.Request) -> web.StreamResponse:
    """A report's photo, to those who may see its project only; never a file outside DATA_DIR/photos."""
    person: Person = request[PERSON]
    try:
        found = await photo_of(request[SESSION], int(request.match_info["photo_id"]))
    except ValueError:
        found = None
    if found is None:
        return _refused(request, "missing", 404)
    row, owner = found
    if not _sees(person, owner.county_id):
        return _refused(request, "scope")
    root = (request.app[SETTINGS].data_dir / "photos").resolve()
    path = (request.app[SETTINGS].data_dir / row.path).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        return _refused(request, "missing", 404)
    return web.FileResponse(path, headers={"Cache-Control": "private, max-age=3600"})


async def _file(request: web.Request, name: str, write: Callable[[Path], Awaitable[object]], mime: str) -> web.Response:
    with tempfile.TemporaryDirectory(prefix="qingshui-web-") as folder:
        target = Path(folder) / name
        await write(target)
        body = await asyncio.to_thread(target.read_bytes)
    return web.Response(body=body, content_type=mime, headers={
        **_HEADERS, "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}"})


async def ledger_file(request: web.Request) -> web.StreamResponse:
    """The ledger workbook of what the person may see: the city, or their county."""
    person: Person = request[PERSON]
    city = _sees(person, None)
    if not city and person.county_id is None:
        return _refused(request, "scope")
    county_id = None if city else person.county_id
    lang = _lang(request)
    return await _file(request, render(lang, "web_common.ledger_filename"),
                       lambda path: export_ledger(request[SESSION], path, county_id=county_id, lang=lang),
                       "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")


async def bulletin_file(request: web.Request) -> web.StreamResponse:
    """The monthly bulletin (city-wide readers): `?month=YYYY-MM`, by default the latest month past its deadline."""
    person: Person = request[PERSON]
    if not _sees(person, None):
        return _refused(request, "scope")
    settings, now = request.app[SETTINGS], request.app[CLOCK]()
    month = request.query.get("month") or due_month(now, settings)
    try:
        bulletin = await build_bulletin(request[SESSION], month, now, settings)
    except ValueError:  # not YYYY-MM, or not begun
        return _refused(request, "missing", 404)
    lang = _lang(request)
    return await _file(request, render(lang, "bulletin.filename", month=month),
                       lambda path: asyncio.to_thread(write_docx, bulletin, path, lang),
                       "application/vnd.openxmlformats-officedocument.wordprocessingml.document")


@cache
def _css() -> str:
    return (resources.files("bot.web.static") / "web.css").read_text(encoding="utf-8")  # ships with the package


async def stylesheet(request: web.Request) -> web.StreamResponse:
    return web.Response(text=_css(), content_type="text/css", charset="utf-8",
                        headers={"Cache-Control": "public, max-age=3600"})


async def cjk_font(request: web.Request) -> web.StreamResponse:
    """The charts' CJK font (bot.services.chart), for a device without one of its own (see web.css)."""
    return web.FileResponse(cjk_font_path(), headers={"Cache-Control": "public, max-age=604800",
                                                      "Content-Type": "font/otf"})


async def miniapp(request: web.Request) -> web.StreamResponse:
    return _html(render(_lang(request), "web_common.miniapp"))


async def miniapp_session(request: web.Request) -> web.StreamResponse:
    """Telegram's initData, checked against BOT_TOKEN, for the person bound to that Telegram account."""
    from aiogram.utils.web_app import safe_parse_webapp_init_data

    settings, now = request.app[SETTINGS], request.app[CLOCK]()
    form = await request.post()
    try:
        data = safe_parse_webapp_init_data(settings.require_token(), str(form.get("initData", "")))
    except ValueError:
        return web.Response(status=403)  # the page says it in the reader's language
    fresh = now - data.auth_date.astimezone(dt.UTC) <= dt.timedelta(hours=settings.web_link_hours)
    if data.user is None or not fresh:
        return web.Response(status=403)  # the page says it in the reader's language
    async with request.app[SESSIONS]() as session:
        person = await session.scalar(select(Person).where(Person.telegram_id == data.user.id))
        if person is None:
            return web.Response(status=403)  # the page says it in the reader's language
        key, _ = await links.issue(session, person, settings, now)
    response = web.Response(text="ok")
    _set_key(response, settings, key)
    return response


def make_app(settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], *, clock: Clock = utcnow
             ) -> web.Application:
    app = web.Application(middlewares=[who])
    app[SETTINGS], app[SESSIONS], app[CLOCK] = settings, sessionmaker, clock
    app.router.add_get("/", home)
    app.router.add_get("/county/{county_id}", county)
    app.router.add_get("/project/{code}", project)
    app.router.add_get("/photo/{photo_id}", photo)
    app.router.add_get("/download/ledger.xlsx", ledger_file)
    app.router.add_get("/download/bulletin.docx", bulletin_file)
    app.router.add_get("/static/web.css", stylesheet)
    app.router.add_get("/static/cjk.otf", cjk_font)
    app.router.add_get("/app", miniapp)
    app.router.add_post("/app/session", miniapp_session)
    return app


async def start_web(settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], *, clock: Clock = utcnow
                    ) -> web.AppRunner | None:
    """Serve the cockpit on WEB_HOST:WEB_PORT; None when WEB_PORT is 0 or the port is taken (the bot runs on:
    the cockpit is not worth stopping the reports for)."""
    if not settings.web_port:
        return None
    runner = web.AppRunner(make_app(settings, sessionmaker, clock=clock), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, settings.web_host, settings.web_port).start()
    except OSError as exc:
        log.error("cockpit not served: %s:%s cannot be bound (%s); set WEB_PORT", settings.web_host,
                  settings.web_port, exc.strerror or exc)
        await runner.cleanup()
        return None
    log.info("cockpit on %s:%s, opened as %s", settings.web_host, settings.web_port, settings.web_base_url)
    return runner
