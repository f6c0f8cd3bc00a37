"""The cockpit over HTTP (README "Cockpit"): who gets in with which link, what each sees, the photos, the
downloads and the Telegram Mini App's initData. tests/test_web_browser.py drives the same pages in Chromium."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import io
import json
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import docx
import openpyxl
import pytest
from aiohttp import CookieJar
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.ledger.io import import_sample
from bot.services.project_views import project_by_code
from bot.services.reports import PhotoInput, ReportInput, save_report
from bot.store.models import County, Person
from bot.web import links
from bot.web.app import COOKIE, make_app
from tests.conftest import make_settings

SH = ZoneInfo("Asia/Shanghai")
NOW = dt.datetime(2026, 11, 20, 10, 0, tzinfo=SH).astimezone(dt.UTC)
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64 + b"\xff\xd9"
TOKEN = "123456789:AAE" + "x" * 32  # shaped like Telegram's


@dataclass
class City:
    settings: Settings
    sessionmaker: async_sessionmaker[AsyncSession]
    people: dict[str, Person]
    photos: dict[str, int]  # county → the id of a photo of one of its projects

    async def key(self, who: str, *, now: dt.datetime = NOW) -> str:
        async with self.sessionmaker() as s:
            key, _ = await links.issue(s, self.people[who], self.settings, now)
            return key


async def photo_report(sm: async_sessionmaker[AsyncSession], data_dir: Path, code: str, person_id: int) -> int:
    relative = Path("photos") / code / f"{code}-1.jpg"
    (data_dir / relative).parent.mkdir(parents=True, exist_ok=True)
    (data_dir / relative).write_bytes(JPEG)
    async with sm() as s:
        project = await project_by_code(s, code)
        assert project is not None
        report = await save_report(s, project, ReportInput(progress=project.progress + 5, text="现场照片",
                                                           photos=(PhotoInput(f"f-{code}", f"u-{code}",
                                                                              relative.as_posix()),)),
                                   person_id=person_id, now=NOW - dt.timedelta(hours=1), tz=SH)
        assert report is not None
        return report.photos[0].id


async def sample_city(sm: async_sessionmaker[AsyncSession], data_dir: Path, db_url: str, **overrides: object) -> City:
    """The sample ledger on 2026-11-20; a leader, an admin, 祁县's contact and county leader, a contact of 榆次区;
    a report with a photo in 祁县 (JZ-011) and in 榆次区 (JZ-004)."""
    await import_sample(sm, now=dt.datetime(2026, 11, 1, 8, 0, tzinfo=SH))
    async with sm() as s:
        counties = {c.name: c.id for c in await s.scalars(select(County))}
        people = {
            "leader": Person(telegram_id=9001, name="张市长", role="leader"),
            "admin": Person(telegram_id=9002, name="刘管理", role="admin", language="en"),
            "contact": Person(telegram_id=9003, name="王联络", role="contact", county_id=counties["祁县"]),
            "county_leader": Person(telegram_id=9004, name="李县长", role="county_leader", county_id=counties["祁县"]),
            "other": Person(telegram_id=9005, name="赵联络", role="contact", county_id=counties["榆次区"]),
        }
        s.add_all(people.values())
        await s.commit()
    photos = {"祁县": await photo_report(sm, data_dir, "JZ-011", people["contact"].id),
              "榆次区": await photo_report(sm, data_dir, "JZ-004", people["other"].id)}
    settings = make_settings(db_url, data_dir, bot_token=TOKEN, **overrides)
    return City(settings, sm, people, photos)


@pytest.fixture
async def city(sessionmaker: async_sessionmaker[AsyncSession], db_url: str, tmp_path: Path) -> City:
    return await sample_city(sessionmaker, tmp_path, db_url)


@pytest.fixture
async def client(city: City) -> AsyncIterator[TestClient]:
    server = TestServer(make_app(city.settings, city.sessionmaker, clock=lambda: NOW))
    async with TestClient(server, cookie_jar=CookieJar(unsafe=True)) as c:  # unsafe: cookies for 127.0.0.1
        yield c


async def open_link(client: TestClient, key: str, path: str = "/") -> tuple[int, str]:
    """Follow a personal link as a browser would: the key goes into a cookie, the page comes next."""
    response = await client.get(f"{path}?k={key}", allow_redirects=False)
    if response.status != 302:
        return response.status, await response.text()
    assert "k=" not in response.headers["Location"] and COOKIE in response.cookies
    page = await client.get(response.headers["Location"])
    return page.status, await page.text()


async def test_a_leaders_link_opens_the_city(city: City, client: TestClient) -> None:
    status, page = await open_link(client, await city.key("leader"))
    assert status == 200
    assert 'id="completion-rate">64%' in page and 'id="start-rate">93%' in page
    assert page.count('<a href="/county/') >= 11 and "<svg id=\"trend\"" in page
    assert (await client.get("/county/1")).status == 200  # any county's list
    project = await client.get("/project/JZ-004")  # any county's project
    assert project.status == 200 and "序时进度" in await project.text()


async def test_a_contact_sees_their_county_only(city: City, client: TestClient) -> None:
    status, page = await open_link(client, await city.key("contact"))
    assert status == 200 and "祁县 · 一县一清单" in page
    assert "JZ-011" in page and "JZ-004" not in page
    assert 'href="/download/bulletin.docx"' not in page
    async with city.sessionmaker() as s:
        yuci = await s.scalar(select(County.id).where(County.name == "榆次区"))
    for path in (f"/county/{yuci}", "/project/JZ-004", f"/photo/{city.photos['榆次区']}", "/download/bulletin.docx"):
        response = await client.get(path)
        assert response.status == 403, path
        assert "只能查看您所在县区的内容" in await response.text()
    own = await client.get(f"/photo/{city.photos['祁县']}")
    assert own.status == 200 and await own.read() == JPEG
    workbook = openpyxl.load_workbook(io.BytesIO(await (await client.get("/download/ledger.xlsx")).read()))
    assert workbook.sheetnames[0] == "祁县" and "全市" not in workbook.sheetnames


async def test_filters_of_the_county_list(city: City, client: TestClient) -> None:
    await open_link(client, await city.key("county_leader"))
    async with city.sessionmaker() as s:
        qixian = await s.scalar(select(County.id).where(County.name == "祁县"))
    red = await (await client.get(f"/county/{qixian}?light=red")).text()
    assert 'data-code="JZ-011"' in red and 'data-code="JZ-009"' not in red
    missing = await (await client.get(f"/county/{qixian}?missing=1")).text()
    # JZ-011 reported today (with its photo); JZ-012 has not; completed projects owe nothing
    assert 'data-code="JZ-012"' in missing
    assert 'data-code="JZ-011"' not in missing and 'data-code="JZ-009"' not in missing


async def test_forged_expired_and_revoked_links_are_refused(city: City, client: TestClient) -> None:
    good = await city.key("leader")
    person, generation, expiry, signature = good.split(".")
    forged = f"{int(person) + 1}.{generation}.{expiry}.{signature}"  # the contact's id under the leader's signature
    assert (await open_link(client, forged))[0] == 403
    assert (await open_link(client, "nonsense"))[0] == 403
    assert (await client.get("/")).status == 403  # no link at all
    expired = await city.key("leader", now=NOW - dt.timedelta(hours=13))  # WEB_LINK_HOURS is 12
    status, page = await open_link(client, expired)
    assert status == 403 and "这个链接已过期" in page

    assert (await open_link(client, good))[0] == 200  # the cookie works …
    async with city.sessionmaker() as s:
        await links.revoke(s, city.people["leader"].id, NOW)
    response = await client.get("/")  # … until the leader revokes their links
    assert response.status == 403 and "已被收回" in await response.text()
    assert (await open_link(client, await city.key("leader")))[0] == 200  # a new link works again


async def test_downloads_for_a_leader(city: City, client: TestClient) -> None:
    await open_link(client, await city.key("admin"))
    page = await (await client.get("/")).text()
    assert "Completion rate" in page  # the admin reads English
    bulletin = await client.get("/download/bulletin.docx?month=2026-10")
    assert bulletin.status == 200
    text = "\n".join(p.text for p in docx.Document(io.BytesIO(await bulletin.read())).paragraphs)
    assert "completion rate 64%" in text
    workbook = openpyxl.load_workbook(io.BytesIO(await (await client.get("/download/ledger.xlsx")).read()))
    assert len(workbook.sheetnames) >= 12  # the city and its 11 counties


def init_data(user_id: int, auth_date: dt.datetime, token: str = TOKEN) -> str:
    """Telegram's Mini App initData, signed as Telegram signs it (core.telegram.org/bots/webapps)."""
    fields = {"auth_date": str(int(auth_date.timestamp())), "query_id": "AAH",
              "user": json.dumps({"id": user_id, "first_name": "市长"}, separators=(",", ":"))}
    check = "\n".join(f"{k}={v}" for k, v in sorted(fields.items()))
    secret = hmac.new(b"WebAppData", token.encode(), hashlib.sha256).digest()
    fields["hash"] = hmac.new(secret, check.encode(), hashlib.sha256).hexdigest()
    return urllib.parse.urlencode(fields)


async def test_the_mini_app_signs_in_with_telegrams_init_data(city: City, client: TestClient) -> None:
    assert (await client.get("/app")).status == 200  # the page that posts initData, no key needed
    fresh = NOW - dt.timedelta(minutes=1)
    for data in (init_data(9001, fresh, token="999:OTHER"), init_data(9001, NOW - dt.timedelta(days=2)),
                 init_data(4242, fresh), "user=%7B%22id%22%3A9001%7D&hash=00"):
        assert (await client.post("/app/session", data={"initData": data})).status == 403
        assert (await client.get("/")).status == 403
    assert (await client.post("/app/session", data={"initData": init_data(9001, fresh)})).status == 200
    page = await client.get("/")
    assert page.status == 200 and 'id="completion-rate">64%' in await page.text()


async def test_a_taken_port_leaves_the_service_running_without_the_cockpit(city: City) -> None:
    import socket

    from bot.web.app import start_web

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = make_settings(str(city.settings.database_url), city.settings.data_dir, bot_token=TOKEN,
                                 web_port=port)
        assert await start_web(settings, city.sessionmaker) is None
    assert await start_web(make_settings(str(city.settings.database_url), city.settings.data_dir, web_port=0),
                           city.sessionmaker) is None


async def test_the_trend_climbs_month_by_month_to_todays_rates(city: City) -> None:
    """The trend counts the ledger's actual starts and finishes per month (in the database, on SQLite and
    PostgreSQL alike): it never goes down, and its last month shows the city's rates of today."""
    from bot.web.views import city_view

    async with city.sessionmaker() as s:
        view = await city_view(s, NOW, city.settings)
    points = view.trend
    assert points[-1].month == "2026-11"
    assert (points[-1].totals.completion_rate, points[-1].totals.start_rate) == (64, 93)
    started = [p.totals.started for p in points]
    completed = [p.totals.completed for p in points]
    assert started == sorted(started) and completed == sorted(completed)
    assert started[0] > 0  # it begins with the first month a project started


async def test_the_city_lists_the_worst_flagged_projects_and_points_to_the_rest(
    city: City, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At 10,000 projects thousands are red or yellow: the city page lists the first FLAGGED_SHOWN, red
    first, says how many more there are, and each county's red and yellow counts open its filtered list."""
    status, page = await open_link(client, await city.key("leader"))
    assert status == 200
    flagged = page.split('<ul class="flagged">')[1].split("</ul>")[0]
    everyone = flagged.count("<li>")
    assert everyone > 3 and "另有" not in page
    monkeypatch.setattr("bot.web.views.FLAGGED_SHOWN", 3)
    page = await (await client.get("/")).text()
    flagged = page.split('<ul class="flagged">')[1].split("</ul>")[0]
    dots = [item.split('<span class="dot ')[1].split('"')[0] for item in flagged.split("<li>")[1:]]
    assert len(dots) == 3 and dots == sorted(dots, key=["red", "yellow"].index)
    assert f"红灯、黄灯项目（{everyone}）" in page and f"另有 {everyone - 3} 个未列出" in page
    ranking = page.split('<table id="ranking">')[1].split("</table>")[0]
    assert '?light=red"><span class="dot red">' in ranking
    county_id = ranking.split('?light=red"')[0].rsplit('href="/county/', 1)[1]
    filtered = await (await client.get(f"/county/{county_id}?light=red")).text()
    assert 'class="on"><span class="dot red">' in filtered


async def test_a_link_only_ever_leads_to_this_site(city: City, client: TestClient) -> None:
    """The key moves from the address into the cookie with a redirect to the same path: a path that decodes
    to `//host` must stay a path here, not become a link to another site."""
    key = await city.key("leader")
    for path, kept in (("/%2Fevil.example/", "/%2Fevil.example/"), ("/%2F%2Fevil.example", "/%2F%2Fevil.example"),
                       ("/county/3", "/county/3")):
        response = await client.get(f"{path}?k={key}&light=red", allow_redirects=False)
        assert response.status == 302
        location = response.headers["Location"]
        assert location.startswith("/") and not location.startswith("//"), location
        assert location == f"{kept}?light=red"


async def test_downloads_are_named_in_the_readers_language(city: City, client: TestClient) -> None:
    await open_link(client, await city.key("leader"))
    bulletin = await client.get("/download/bulletin.docx?month=2026-10")
    assert bulletin.status == 200
    disposition = bulletin.headers["Content-Disposition"]
    assert disposition == "attachment; filename*=UTF-8''" + urllib.parse.quote("月度通报-2026-10.docx")
    ledger = await client.get("/download/ledger.xlsx")
    assert ledger.headers["Content-Disposition"].endswith(urllib.parse.quote("台账.xlsx"))
    for odd in ("２０２６-１０", "2026-+1", "2026-1", "../../x"):  # a month typed in the address bar
        assert (await client.get(f"/download/bulletin.docx?month={urllib.parse.quote(odd)}")).status == 404
