"""/web (and 🖥 驾驶舱 on a leader's keyboard): the person's own cockpit link (README "Cockpit"); `/web revoke`
voids every link they were given. With an https WEB_BASE_URL a button opens the cockpit as a Telegram Mini App."""

from __future__ import annotations

from aiogram.filters import Command, CommandObject
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, Message, WebAppInfo

from bot.web import links
from handlers.common import RouterSpec, answer
from handlers.context import Ctx
from handlers.keyboards import MenuButton

router = RouterSpec("web")
SEE = {"access": "see"}
REVOKE = ("revoke", "off", "收回", "撤销")


@router.message(Command("web"), flags=SEE)
@router.message(MenuButton("menu_web"), flags=SEE)
async def web_link(message: Message, ctx: Ctx, command: CommandObject | None = None) -> None:
    person = ctx.person
    assert person is not None  # the access flag answers people not bound
    if command is not None and (command.args or "").strip().lower() in REVOKE:
        await links.revoke(ctx.session, person.id, ctx.now())
        await answer(message, ctx.t("web.revoked"))
        return
    key, expires = await links.issue(ctx.session, person, ctx.settings, ctx.now())
    markup = None
    if ctx.settings.web_base_url.startswith("https://"):  # Telegram opens Mini Apps over https only
        markup = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(
            text=ctx.t("buttons.web_open"), web_app=WebAppInfo(url=f"{ctx.settings.web_base_url}/app"))]])
    await answer(message, ctx.t("web.link", url=links.link(ctx.settings, key),
                                expires=expires.astimezone(ctx.settings.tz), hours=ctx.settings.web_link_hours),
                 markup)
