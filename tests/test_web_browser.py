"""The cockpit in a real browser: headless Chromium (Debian's chromium and chromium-driver, installed by .ci/run)
driven by selenium against the cockpit served as `qingshui run` serves it, on the sample ledger.

Set UPDATE_DOCS_SCREENSHOT=1 to write the README's picture of the city page (docs/cockpit-city.png)."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import shutil
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.store.db import make_engine, make_sessionmaker
from bot.store.models import County
from bot.web import links
from bot.web.app import start_web
from tests.conftest import IN_CI
from tests.test_web import NOW, TOKEN, City, sample_city

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
T = TypeVar("T")
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def sm(sqlite_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(sqlite_url)
    yield make_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture
async def served(sm: async_sessionmaker[AsyncSession], sqlite_url: str, tmp_path: Path) -> AsyncIterator[City]:
    """The sample city, its cockpit listening on a free port as `qingshui run` starts it."""
    port = _free_port()
    city = await sample_city(sm, tmp_path, sqlite_url, web_port=port, web_base_url=f"http://127.0.0.1:{port}")
    runner = await start_web(city.settings, sm, clock=lambda: NOW)
    assert runner is not None
    yield city
    await runner.cleanup()


@pytest.fixture
def browser() -> Any:
    if not (CHROMIUM and DRIVER):
        if IN_CI:
            pytest.fail("chromium and chromedriver are needed (.ci/run installs them)")
        pytest.skip("chromium or chromedriver not installed (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=412,915", "--lang=zh-CN"):  # a phone's width
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


async def off_loop(call: Callable[..., T], *args: Any) -> T:
    """Selenium blocks: it runs in a thread while this loop serves the pages it asks for."""
    return await asyncio.to_thread(call, *args)


async def visit(driver: Any, url: str) -> str:
    await off_loop(driver.get, url)
    return str(await off_loop(lambda: driver.find_element("tag name", "body").text))


async def test_a_leaders_link_shows_the_city_at_a_glance(served: City, browser: Any, tmp_path: Path) -> None:
    base = served.settings.web_base_url
    text = await visit(browser, f"{base}/?k={await served.key('leader')}")
    assert browser.current_url == f"{base}/"  # the key left the address bar for a cookie
    assert await off_loop(lambda: browser.find_element("id", "completion-rate").text) == "64%"
    assert await off_loop(lambda: browser.find_element("id", "start-rate").text) == "93%"
    rows = await off_loop(lambda: browser.find_elements("css selector", "#ranking tbody tr"))
    assert len(rows) == 11
    # the trend is drawn: two lines with a point a month, and it has a size on the screen
    trend = await off_loop(lambda: browser.find_element("id", "trend"))
    assert (await off_loop(lambda: trend.size))["height"] > 100
    assert len(await off_loop(lambda: trend.find_elements("css selector", "polyline"))) == 2
    assert len(await off_loop(lambda: trend.find_elements("css selector", "circle"))) >= 4
    assert "骏马" in text and "红灯、黄灯项目" in text
    # readable on a phone: nothing wider than the screen but the tables' own scrolling cards
    overflow = await off_loop(lambda: browser.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth"))
    assert overflow <= 0

    png = await off_loop(browser.get_screenshot_as_png)
    assert png[:4] == b"\x89PNG"
    if os.environ.get("UPDATE_DOCS_SCREENSHOT"):
        await off_loop(browser.set_window_size, 1280, 1500)
        await off_loop(browser.get, f"{base}/")
        (ROOT / "docs").mkdir(exist_ok=True)
        await off_loop(browser.save_screenshot, str(ROOT / "docs" / "cockpit-city.png"))

    # a county from the ranking, then a project from its list: the plan against progress, and the photo
    await off_loop(lambda: browser.find_element("link text", "祁县").click())
    assert "JZ-011" in await off_loop(lambda: browser.find_element("id", "projects").text)
    await off_loop(lambda: browser.find_element("link text", "JZ-011").click())
    assert await off_loop(lambda: browser.find_element("id", "progress").text)
    plan = await off_loop(lambda: browser.find_element("id", "plan"))
    assert len(await off_loop(lambda: plan.find_elements("css selector", "polyline.plan"))) == 1
    photo = await off_loop(lambda: browser.find_element("css selector", ".photos img"))
    assert await off_loop(lambda: browser.execute_script("return arguments[0].naturalWidth", photo)) is not None
    assert "现场照片" in await off_loop(lambda: browser.find_element("id", "reports").text)


async def test_a_contacts_link_shows_only_their_county(served: City, browser: Any) -> None:
    base = served.settings.web_base_url
    text = await visit(browser, f"{base}/?k={await served.key('contact')}")
    assert "祁县 · 一县一清单" in text
    codes = {e.get_attribute("data-code") for e in
             await off_loop(lambda: browser.find_elements("css selector", "#projects tbody tr"))}
    assert codes == {"JZ-009", "JZ-010", "JZ-011", "JZ-012"}
    await off_loop(lambda: browser.find_element("css selector", "#filters a[href='?light=red']").click())
    red = {e.get_attribute("data-code") for e in
           await off_loop(lambda: browser.find_elements("css selector", "#projects tbody tr"))}
    assert red == {"JZ-011"}

    async with served.sessionmaker() as s:
        yuci = await s.scalar(select(County.id).where(County.name == "榆次区"))
    for path in ("/", f"/county/{yuci}", "/project/JZ-004", f"/photo/{served.photos['榆次区']}"):
        text = await visit(browser, base + path)
        if path == "/":  # the city is not theirs: home is their county
            assert "祁县 · 一县一清单" in text and "全市项目推进情况" not in text
        else:
            assert "只能查看您所在县区的内容" in text, path


async def test_forged_expired_and_revoked_links_are_refused(served: City, browser: Any) -> None:
    base = served.settings.web_base_url
    good = await served.key("leader")
    person, generation, expiry, signature = good.split(".")
    assert "这个链接无效" in await visit(browser, f"{base}/?k={person}.{generation}.{int(expiry) + 3600}.{signature}")
    async with served.sessionmaker() as s:
        old = links.sign(links.secret_of(served.settings), served.people["leader"].id, 0,
                         NOW - dt.timedelta(minutes=1))  # properly signed, but its time is up
    assert "这个链接已过期" in await visit(browser, f"{base}/?k={old}")
    assert "64%" in await visit(browser, f"{base}/?k={good}")
    async with served.sessionmaker() as s:
        await links.revoke(s, served.people["leader"].id, NOW)
    assert "已被收回" in await visit(browser, f"{base}/")  # the cookie of the revoked link
    assert "已被收回" in await visit(browser, f"{base}/?k={good}")
    assert TOKEN not in await off_loop(lambda: browser.page_source)
