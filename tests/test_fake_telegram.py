"""Tests for the fake Bot API server, driven through a real aiogram Bot."""

from __future__ import annotations

import asyncio
import html
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiogram import Bot, Dispatcher, F, Router
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods import SendMessage
from aiogram.types import (
    BotCommand,
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    MenuButtonCommands,
    Message,
)
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web

from bot.demo.fake_telegram import BOT_ID, FakeTelegram, check_html, html_to_text, parse_html, utf16_len

TOKEN = "42:TEST-token_fake"
ALICE = 1
BOB = 2


def make_bot(fake: FakeTelegram, timeout: float | None = None) -> Bot:
    kwargs: dict[str, Any] = {"api": TelegramAPIServer.from_base(fake.base_url)}
    if timeout is not None:
        kwargs["timeout"] = timeout
    return Bot(TOKEN, session=AiohttpSession(**kwargs), default=DefaultBotProperties(parse_mode="HTML"))


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        server.user(ALICE, "Alice", username="alice")
        server.user(BOB, "Bob")
        yield server


@pytest.fixture
async def bot(fake: FakeTelegram) -> AsyncIterator[Bot]:
    b = make_bot(fake)
    yield b
    await b.session.close()


def keyboard(*data: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text=d[:10] or "x", callback_data=d)] for d in data]
    )


# ---------------------------------------------------------------- HTML parser


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ("1 < 2", 'Unsupported start tag "" at byte offset 2'),
        ("a<b", "Unclosed start tag at byte offset 1"),
        ("line<br>next", 'Unsupported start tag "br" at byte offset 4'),
        ("<div>x</div>", 'Unsupported start tag "div" at byte offset 0'),
        ("<b>x</i>", 'Unmatched end tag at byte offset 4, expected "</b>", found "</i>"'),
        ("<b><i>x</b></i>", 'Unmatched end tag at byte offset 7, expected "</i>", found "</b>"'),
        ("x</b>", "Unexpected end tag at byte offset 1"),
        ("<b>x", 'Can\'t find end tag corresponding to start tag "b"'),
        ("<span>s</span>", 'Tag "span" must have class "tg-spoiler" at byte offset 0'),
        ("AT&T", 'Unescaped "&" at byte offset 2'),
        ("&nbsp;", 'Unescaped "&" at byte offset 0'),
        ("清水 <x>", 'Unsupported start tag "x" at byte offset 7'),  # offsets are UTF-8 bytes
    ],
)
def test_html_rejections(source: str, error: str) -> None:
    assert check_html(source) == error


def test_html_accepts_telegram_tags() -> None:
    source = (
        "<b>b</b><strong>s</strong><i>i</i><em>e</em><u>u</u><ins>n</ins><s>s</s><strike>k</strike><del>d</del>"
        '<span class="tg-spoiler">p</span><tg-spoiler>q</tg-spoiler><a href="https://e.org/?a=1&amp;b=2">l</a>'
        '<code>c</code><pre><code class="language-python">x = 1</code></pre><blockquote>q</blockquote>'
        '<blockquote expandable>z</blockquote><tg-emoji emoji-id="5368324170671202286">👍</tg-emoji>'
        " &lt;&gt;&amp;&quot;&#65;&#x42;"
    )
    text, entities = parse_html(source)
    assert text == 'bsieunskdpqlcx = 1qz👍 <>&"AB'
    types = [e.type for e in entities]
    assert types.count("bold") == 2 and types.count("strikethrough") == 3
    assert "expandable_blockquote" in types and "custom_emoji" in types
    link = next(e for e in entities if e.type == "text_link")
    assert link.url == "https://e.org/?a=1&b=2"
    pre = next(e for e in entities if e.type == "pre")
    assert pre.language == "python" and "code" not in [e.type for e in entities if e.offset == pre.offset]


def test_plain_text_and_utf16() -> None:
    assert html_to_text("<b>清水</b> &amp; 😀") == "清水 & 😀"
    assert utf16_len("😀") == 2 and utf16_len("清") == 1
    # Entity offsets are UTF-16 units, as in the Bot API.
    _, [emoji_bold, tail_italic] = parse_html("😀<b>清😀</b>x<i>y</i>")
    assert (emoji_bold.offset, emoji_bold.length) == (2, 3)
    assert (tail_italic.offset, tail_italic.length) == (6, 1)
    # Lenient mode behaves like TDLib: unknown entities stay literal.
    assert html_to_text("AT&T &nbsp;", strict_amp=False) == "AT&T &nbsp;"


# ---------------------------------------------------------------- sending and validation


async def test_get_me(bot: Bot, fake: FakeTelegram) -> None:
    me = await bot.get_me()
    assert (me.id, me.is_bot, me.username, me.first_name) == (BOT_ID, True, "qingshui_test_bot", "Qingshui")
    assert fake.token == TOKEN


async def test_valid_html_is_recorded_with_plain_text(bot: Bot, fake: FakeTelegram) -> None:
    source = '<b>水质</b> &lt;良好&gt; &amp; <a href="https://example.org">详情</a>'
    msg = await bot.send_message(ALICE, source, reply_markup=keyboard("open:1"))
    assert msg.text == "水质 <良好> & 详情"
    assert msg.from_user is not None and msg.from_user.id == BOT_ID
    assert msg.chat.id == ALICE and msg.chat.type == "private" and msg.chat.first_name == "Alice"
    assert [e.type for e in msg.entities or []] == ["bold", "text_link"]
    assert msg.reply_markup is not None and msg.reply_markup.inline_keyboard[0][0].callback_data == "open:1"
    [rec] = fake.messages_to(ALICE)
    assert (rec.method, rec.text, rec.html, rec.message_id) == ("sendMessage", msg.text, source, msg.message_id)
    assert rec.callback_data() == ["open:1"]


@pytest.mark.parametrize("source", ["1 < 2", "<br>", "<b>unclosed", "Tom & Jerry", "<p>x</p>"])
async def test_bad_html_is_rejected(bot: Bot, fake: FakeTelegram, source: str) -> None:
    with pytest.raises(TelegramBadRequest, match="can't parse entities"):
        await bot.send_message(ALICE, source)
    assert fake.sent == []
    assert fake.rejected[-1].description.startswith("Bad Request: can't parse entities: ")


async def test_plain_mode_is_not_parsed(bot: Bot, fake: FakeTelegram) -> None:
    msg = await bot.send_message(ALICE, "1 < 2 & <b>", parse_mode=None)
    assert msg.text == "1 < 2 & <b>"


async def test_text_length_limits(bot: Bot) -> None:
    await bot.send_message(ALICE, "x" * 4096)
    await bot.send_message(ALICE, "<b>" + "x" * 4096 + "</b>")  # markup does not count
    await bot.send_message(ALICE, "&amp;" * 4096)  # entities count as one character
    await bot.send_message(ALICE, "😀" * 2048)  # 4096 UTF-16 units
    for too_long in ("x" * 4097, "😀" * 2049):
        with pytest.raises(TelegramBadRequest, match="message is too long"):
            await bot.send_message(ALICE, too_long)


@pytest.mark.parametrize("text", ["<b></b>", "   \n ", "<i> </i>"])
async def test_empty_text(bot: Bot, text: str) -> None:
    with pytest.raises(TelegramBadRequest, match="message text is empty"):
        await bot.send_message(ALICE, text)


async def test_caption_limit(bot: Bot) -> None:
    photo = BufferedInputFile(b"\xff\xd8img", "chart.png")
    msg = await bot.send_photo(ALICE, photo, caption="<b>" + "c" * 1024 + "</b>")
    assert msg.caption == "c" * 1024 and len(msg.photo or []) == 2
    with pytest.raises(TelegramBadRequest, match="message caption is too long"):
        await bot.send_photo(ALICE, BufferedInputFile(b"img", "chart.png"), caption="c" * 1025)


async def test_callback_data_limits(bot: Bot, fake: FakeTelegram) -> None:
    await bot.send_message(ALICE, "ok", reply_markup=keyboard("d" * 64))
    await bot.send_message(ALICE, "ok", reply_markup=keyboard("清" * 21 + "d"))  # 64 UTF-8 bytes
    for bad in ("d" * 65, "清" * 22, ""):
        with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
            await bot.send_message(ALICE, "bad", reply_markup=keyboard(bad))
    many = InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text=str(i), callback_data=str(i)) for i in range(r, r + 8)] for r in range(0, 101, 8)
        ]
    )
    with pytest.raises(TelegramBadRequest, match="reply markup is too long"):
        await bot.send_message(ALICE, "many", reply_markup=many)
    assert len(fake.messages_to(ALICE)) == 2


async def test_unknown_and_blocked_chats(bot: Bot, fake: FakeTelegram) -> None:
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(999, "hi")
    fake.block(BOB)
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await bot.send_message(BOB, "hi")
    fake.unblock(BOB)
    await bot.send_message(BOB, "hi again")
    assert [r.text for r in fake.messages_to(BOB)] == ["hi again"]
    assert fake.counters["forbidden"] == 1 and fake.counters["bad_request"] == 1


async def test_edit_rules(bot: Bot, fake: FakeTelegram) -> None:
    msg = await bot.send_message(ALICE, "<b>v1</b>", reply_markup=keyboard("a"))
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text(
            text="<b>v1</b>", chat_id=ALICE, message_id=msg.message_id, reply_markup=keyboard("a")
        )
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text(
            text="<strong>v1</strong>", chat_id=ALICE, message_id=msg.message_id, reply_markup=keyboard("a")
        )
    # Same text but the keyboard disappears: that is a modification.
    edited = await bot.edit_message_text(text="<b>v1</b>", chat_id=ALICE, message_id=msg.message_id)
    assert isinstance(edited, Message) and edited.reply_markup is None and edited.edit_date
    edited = await bot.edit_message_text(text="v2", chat_id=ALICE, message_id=msg.message_id)
    assert isinstance(edited, Message) and edited.text == "v2"
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text(text="x", chat_id=ALICE, message_id=9999)
    await bot.edit_message_reply_markup(chat_id=ALICE, message_id=msg.message_id, reply_markup=keyboard("b"))
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_reply_markup(chat_id=ALICE, message_id=msg.message_id, reply_markup=keyboard("b"))
    assert fake.message(ALICE, msg.message_id)["text"] == "v2"  # type: ignore[index]
    assert await bot.delete_message(ALICE, msg.message_id)
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text(text="v3", chat_id=ALICE, message_id=msg.message_id)
    with pytest.raises(TelegramBadRequest, match="message to delete not found"):
        await bot.delete_message(ALICE, msg.message_id)
    # Users' own messages cannot be edited by the bot.
    update = fake.send_text(ALICE, "mine")
    with pytest.raises(TelegramBadRequest, match="message can't be edited"):
        await bot.edit_message_text(text="x", chat_id=ALICE, message_id=update["message"]["message_id"])


async def test_caption_edit_and_reply(bot: Bot, fake: FakeTelegram) -> None:
    msg = await bot.send_photo(ALICE, BufferedInputFile(b"png", "a.png"), caption="old")
    edited = await bot.edit_message_caption(chat_id=ALICE, message_id=msg.message_id, caption="<i>new</i>")
    assert isinstance(edited, Message) and edited.caption == "new"
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_caption(chat_id=ALICE, message_id=msg.message_id, caption="<i>new</i>")
    with pytest.raises(TelegramBadRequest, match="there is no text in the message to edit"):
        await bot.edit_message_text(text="t", chat_id=ALICE, message_id=msg.message_id)
    question = fake.send_text(ALICE, "how much?")
    answer = await bot.send_message(ALICE, "this much", reply_to_message_id=question["message"]["message_id"])
    assert answer.reply_to_message is not None and answer.reply_to_message.text == "how much?"
    with pytest.raises(TelegramBadRequest, match="message to be replied not found"):
        await bot.send_message(ALICE, "x", reply_to_message_id=12345)


async def test_callback_query_answers(bot: Bot, fake: FakeTelegram) -> None:
    msg = await bot.send_message(ALICE, "pick", reply_markup=keyboard("yes", "no"))
    update = fake.press(ALICE, msg.message_id, "yes")
    query_id = update["callback_query"]["id"]
    assert update["callback_query"]["message"]["message_id"] == msg.message_id
    assert await bot.answer_callback_query(query_id, text="done")
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query(query_id)
    with pytest.raises(TelegramBadRequest, match="query ID is invalid"):
        await bot.answer_callback_query("123")
    with pytest.raises(AssertionError, match="no button"):
        fake.press(ALICE, msg.message_id, "maybe")


async def test_misc_methods(bot: Bot, fake: FakeTelegram) -> None:
    assert await bot.send_chat_action(ALICE, "typing")
    with pytest.raises(TelegramBadRequest, match="wrong parameter action"):
        await bot.send_chat_action(ALICE, "dancing")  # type: ignore[arg-type]
    commands = [BotCommand(command="start", description="开始"), BotCommand(command="today", description="今日")]
    assert await bot.set_my_commands(commands)
    assert [c.command for c in await bot.get_my_commands()] == ["start", "today"]
    assert await bot.get_my_commands(language_code="en") == []
    with pytest.raises(TelegramBadRequest, match="BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand(command="Bad-Name", description="x")])
    assert await bot.delete_my_commands()
    assert await bot.get_my_commands() == []
    assert await bot.set_chat_menu_button(chat_id=ALICE, menu_button=MenuButtonCommands())
    assert [r.method for r in fake.sent][:2] == ["sendChatAction", "setMyCommands"]
    assert fake.messages_to(ALICE) == []


async def test_raw_json_get_and_unknown_method(fake: FakeTelegram) -> None:
    async with aiohttp.ClientSession() as http:
        url = f"{fake.base_url}/bot{TOKEN}"
        async with http.post(
            f"{url}/sendMessage", json={"chat_id": ALICE, "text": "<b>json</b>", "parse_mode": "HTML"}
        ) as resp:
            body = await resp.json()
            assert resp.status == 200 and body["result"]["text"] == "json"
        async with http.get(f"{url}/getMe") as resp:
            assert (await resp.json())["result"]["username"] == "qingshui_test_bot"
        async with http.post(f"{url}/sendmessage", data={"chat_id": str(ALICE), "text": "form"}) as resp:
            assert (await resp.json())["result"]["text"] == "form"  # method names are case-insensitive
        async with http.post(f"{url}/fooBar") as resp:
            assert resp.status == 404
            assert await resp.json() == {"ok": False, "error_code": 404, "description": "Not Found: method not found"}
        async with http.post(f"{fake.base_url}/bot1:other/getMe") as resp:
            assert resp.status == 401  # one bot token per server


# ---------------------------------------------------------------- rate limits and faults


async def test_per_chat_rate_limit(bot: Bot, fake: FakeTelegram) -> None:
    fake.set_rate_limits(per_chat_per_second=2)
    await bot.send_message(ALICE, "1")
    await bot.send_message(ALICE, "2")
    with pytest.raises(TelegramRetryAfter) as exc:
        await bot.send_message(ALICE, "3")
    assert exc.value.retry_after == 1
    await bot.send_message(BOB, "other chat is fine")
    await asyncio.sleep(1.05)
    await bot.send_message(ALICE, "3 again")
    assert fake.counters["rate_limited"] == 1
    assert [r.text for r in fake.messages_to(ALICE)] == ["1", "2", "3 again"]


async def test_global_and_group_rate_limit(bot: Bot, fake: FakeTelegram) -> None:
    fake.set_rate_limits(global_per_second=3, group_per_minute=1)
    fake.group(-100, "Team")
    await bot.send_message(-100, "group once")
    with pytest.raises(TelegramRetryAfter) as exc:
        await bot.send_message(-100, "group twice")
    assert 55 <= exc.value.retry_after <= 60
    await bot.send_message(ALICE, "a")
    await bot.send_message(BOB, "b")
    with pytest.raises(TelegramRetryAfter):
        await bot.send_message(ALICE, "c")
    # Rejected sends do not count towards the window.
    with pytest.raises(TelegramBadRequest):
        await bot.send_message(999, "nobody")
    assert fake.counters["rate_limited"] == 2


async def test_fail_next(bot: Bot, fake: FakeTelegram) -> None:
    fake.fail_next(1, status=429, retry_after=7)
    with pytest.raises(TelegramRetryAfter) as exc:
        await bot.send_message(ALICE, "x")
    assert exc.value.retry_after == 7
    fake.fail_next(2, status=502, methods=["sendPhoto"])
    await bot.send_message(ALICE, "not affected")
    for _ in range(2):
        with pytest.raises(TelegramServerError):
            await bot.send_photo(ALICE, BufferedInputFile(b"x", "x.png"))
    await bot.send_photo(ALICE, BufferedInputFile(b"x", "x.png"))
    assert fake.counters["injected_429"] == 1 and fake.counters["injected_502"] == 2
    assert len(fake.messages_to(ALICE)) == 2


async def test_delay_next_causes_client_timeout(fake: FakeTelegram) -> None:
    slow_bot = make_bot(fake, timeout=0.3)
    try:
        fake.delay_next(1, seconds=0.6)
        with pytest.raises(TelegramNetworkError):
            await slow_bot.send_message(ALICE, "slow")
        # Like Telegram, the timed-out call may still be executed afterwards.
        rec = await fake.wait_for(lambda r: r.text == "slow", timeout=2)
        assert rec.chat_id == ALICE
        fake.delay_next(1, seconds=0.6, execute=False)
        with pytest.raises(TelegramNetworkError):
            await slow_bot.send_message(ALICE, "lost")
        await asyncio.sleep(0.5)
        assert [r.text for r in fake.messages_to(ALICE)] == ["slow"]
    finally:
        await slow_bot.session.close()


async def test_storm_and_calm(bot: Bot, fake: FakeTelegram) -> None:
    fake.set_storm(1.0, kinds=("429", "500"), seed=3)
    errors = 0
    for i in range(10):
        try:
            await bot.send_message(ALICE, f"m{i}")
        except (TelegramRetryAfter, TelegramServerError):
            errors += 1
    assert errors == 10
    assert fake.counters["storm_429"] + fake.counters["storm_500"] == 10
    fake.set_storm(0.5, kinds=("502",), seed=1)
    outcomes = []
    for i in range(20):
        try:
            await bot.send_message(ALICE, f"n{i}")
            outcomes.append(True)
        except TelegramServerError:
            outcomes.append(False)
    assert 0 < outcomes.count(False) < 20
    fake.calm()
    await bot.send_message(ALICE, "calm")
    assert fake.messages_to(ALICE)[-1].text == "calm"


# ---------------------------------------------------------------- updates: polling


async def test_long_polling_waits_and_confirms(bot: Bot, fake: FakeTelegram) -> None:
    started = time.monotonic()
    poll = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0.2)
    sent = fake.send_text(ALICE, "你好")
    updates = await poll
    assert time.monotonic() - started < 2
    assert [u.update_id for u in updates] == [sent["update_id"]]
    assert updates[0].message is not None and updates[0].message.text == "你好"
    # Not confirmed yet: delivered again; confirmed by offset: gone.
    assert len(await bot.get_updates()) == 1
    assert await bot.get_updates(offset=sent["update_id"] + 1) == []
    assert fake.pending_updates == 0
    started = time.monotonic()
    assert await bot.get_updates(offset=sent["update_id"] + 1, timeout=1) == []
    assert time.monotonic() - started >= 0.9


async def test_duplicate_delivery_keeps_update_id(bot: Bot, fake: FakeTelegram) -> None:
    first = fake.send_text(ALICE, "once")
    [u1] = await bot.get_updates()
    offset = u1.update_id + 1
    assert await bot.get_updates(offset=offset) == []
    fake.deliver_again(first)
    [u2] = await bot.get_updates(offset=offset)
    assert u1.update_id == u2.update_id == first["update_id"]
    assert await bot.get_updates(offset=offset) == []


async def test_concurrent_polls_conflict(bot: Bot, fake: FakeTelegram) -> None:
    old = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0.2)
    new = asyncio.create_task(bot.get_updates(timeout=1))
    with pytest.raises(TelegramConflictError, match="terminated by other getUpdates request"):
        await old
    assert await new == []


async def test_dispatcher_polling_end_to_end(fake: FakeTelegram) -> None:
    bot = make_bot(fake)
    router = Router()
    seen: list[int] = []

    @router.message(F.text)
    async def echo(message: Message) -> None:
        await message.answer(f"<b>收到</b>: {html.escape(message.text or '')}", reply_markup=keyboard("again"))

    @router.message(F.photo)
    async def photo(message: Message, bot: Bot) -> None:
        assert message.photo is not None
        file = await bot.get_file(message.photo[-1].file_id)
        assert file.file_path is not None
        data = await bot.download_file(file.file_path)
        assert data is not None
        await message.answer(f"{len(data.read())} bytes")

    @router.callback_query(F.data == "again")
    async def again(query: CallbackQuery) -> None:
        await query.answer("ok")
        assert isinstance(query.message, Message)
        await query.message.edit_text("pressed")

    dp = Dispatcher()
    dp.include_router(router)

    @dp.update.outer_middleware()
    async def track(handler: Any, event: Any, data: dict[str, Any]) -> Any:
        seen.append(event.update_id)
        return await handler(event, data)

    task = asyncio.create_task(dp.start_polling(bot, handle_signals=False, polling_timeout=1))
    try:
        update = fake.send_text(ALICE, "a < b")
        reply = await fake.wait_for(lambda r: r.method == "sendMessage" and r.chat_id == ALICE)
        assert reply.text == "收到: a < b" and reply.html == "<b>收到</b>: a &lt; b"

        fake.deliver_again(update)
        await fake.wait_for(lambda r: r.seq > reply.seq and r.method == "sendMessage")
        assert seen.count(update["update_id"]) == 2

        fake.press(ALICE, reply, "again")
        edit = await fake.wait_for(lambda r: r.method == "editMessageText")
        assert edit.text == "pressed" and edit.message_id == reply.message_id
        await fake.wait_for(lambda r: r.method == "answerCallbackQuery")

        picture = b"\x89PNG-fake-bytes"
        fake.send_photo(BOB, caption="look", data=picture)
        rec = await fake.wait_for(lambda r: r.chat_id == BOB)
        assert rec.text == f"{len(picture)} bytes"
        await fake.wait_idle(quiet=0.1)
    finally:
        await dp.stop_polling()
        await asyncio.wait_for(task, 5)


async def test_files_roundtrip(bot: Bot, fake: FakeTelegram) -> None:
    photo_update = fake.send_photo(ALICE, data=b"photo-bytes")
    sizes = photo_update["message"]["photo"]
    assert len(sizes) == 2 and sizes[0]["file_id"] != sizes[1]["file_id"]
    file = await bot.get_file(sizes[-1]["file_id"])
    assert file.file_path is not None and file.file_size == len(b"photo-bytes")
    buf = await bot.download_file(file.file_path)
    assert buf is not None and buf.read() == b"photo-bytes"

    doc_update = fake.send_document(ALICE, "台账.xlsx", b"PK\x03\x04", mime="application/vnd.ms-excel")
    assert doc_update["message"]["document"]["file_name"] == "台账.xlsx"

    sent = await bot.send_document(ALICE, BufferedInputFile(b"a,b\n1,2\n", "report.csv"), caption="<b>报表</b>")
    assert sent.document is not None and sent.document.mime_type == "text/csv"
    rec = fake.messages_to(ALICE)[-1]
    assert (rec.file_name, rec.file_bytes, rec.text) == ("report.csv", b"a,b\n1,2\n", "报表")
    again = await bot.send_document(ALICE, sent.document.file_id)  # resend by file_id
    assert again.document is not None and again.document.file_unique_id == sent.document.file_unique_id
    with pytest.raises(TelegramBadRequest, match="wrong file identifier"):
        await bot.send_document(ALICE, "no-such-file")
    with pytest.raises(TelegramBadRequest, match="invalid file_id"):
        await bot.get_file("nope")


async def test_wait_for_timeout_shows_log(bot: Bot, fake: FakeTelegram) -> None:
    await bot.send_message(ALICE, "something else")
    with pytest.raises(TelegramBadRequest):
        await bot.send_message(ALICE, "<oops>")
    with pytest.raises(AssertionError) as exc:
        await fake.wait_for(lambda r: r.text == "never", timeout=0.2)
    assert "something else" in str(exc.value) and "Unsupported start tag" in str(exc.value)


# ---------------------------------------------------------------- updates: webhook


async def _receiver(handler: Any) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_post("/hook", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}/hook"


async def test_webhook_delivery_with_secret_and_retry(bot: Bot, fake: FakeTelegram) -> None:
    received: list[tuple[str | None, dict[str, Any]]] = []
    got = asyncio.Event()

    async def hook(request: web.Request) -> web.Response:
        received.append((request.headers.get("X-Telegram-Bot-Api-Secret-Token"), await request.json()))
        got.set()
        return web.Response(status=500 if len(received) == 1 else 200)

    runner, url = await _receiver(hook)
    try:
        pending = fake.send_text(ALICE, "queued before the webhook")
        assert await bot.set_webhook(url, secret_token="s3cr3t_T0ken")
        with pytest.raises(TelegramConflictError, match="webhook is active"):
            await bot.get_updates()
        await asyncio.wait_for(got.wait(), 5)
        fresh = fake.send_text(ALICE, "after")  # same chat: must wait for the retried one
        await fake.wait_idle(quiet=0.1)
        assert [u["update_id"] for _, u in received] == [pending["update_id"], pending["update_id"], fresh["update_id"]]
        assert {secret for secret, _ in received} == {"s3cr3t_T0ken"}
        assert fake.counters["webhook_retry"] == 1 and fake.counters["webhook_ok"] == 2
        info = await bot.get_webhook_info()
        assert info.url == url and info.last_error_message and "500" in info.last_error_message
        assert await bot.delete_webhook()
        fake.send_text(ALICE, "polling again")
        assert len(await bot.get_updates()) == 1
    finally:
        await runner.cleanup()


async def test_webhook_reply_in_response_is_executed(fake: FakeTelegram) -> None:
    bot = make_bot(fake)
    dp = Dispatcher()

    @dp.message()
    async def reply(message: Message) -> SendMessage:
        return message.answer(f"webhook <i>{html.escape(message.text or '')}</i>")

    app = web.Application()
    SimpleRequestHandler(dp, bot, handle_in_background=False, secret_token="abc").register(app, "/hook")
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        await bot.set_webhook(f"http://127.0.0.1:{runner.addresses[0][1]}/hook", secret_token="abc")
        fake.send_text(ALICE, "ping & pong")
        rec = await fake.wait_for(lambda r: r.method == "sendMessage")
        assert rec.text == "webhook ping & pong" and rec.chat_id == ALICE
    finally:
        await runner.cleanup()
        await bot.session.close()


# ---------------------------------------------------------------- recording for the offline demo


async def test_record_dir(tmp_path: Path) -> None:
    async with FakeTelegram(record_dir=tmp_path) as fake:
        fake.user(ALICE, "Alice")
        bot = make_bot(fake)
        try:
            await bot.send_message(ALICE, "<b>a &lt; b</b>")
            await bot.send_document(ALICE, BufferedInputFile(b"doc", "../evil <name>.txt"), caption="文件")
            await bot.send_photo(ALICE, BufferedInputFile(b"img", "chart.png"))
        finally:
            await bot.session.close()
    _check_recorded_files(tmp_path)


def _check_recorded_files(tmp_path: Path) -> None:
    names = sorted(p.name for p in tmp_path.iterdir())
    assert "00001_sendMessage_1.html" in names and "00001_sendMessage_1.txt" in names
    assert (tmp_path / "00001_sendMessage_1.txt").read_text(encoding="utf-8") == "a < b"
    assert (tmp_path / "00001_sendMessage_1.html").read_text(encoding="utf-8") == "<b>a &lt; b</b>"
    assert (tmp_path / "00002_evil_name_.txt").read_bytes() == b"doc"
    assert (tmp_path / "00003_chart.png").read_bytes() == b"img"
    index = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert "<pre>a &lt; b</pre>" in index and "<name>" not in index
