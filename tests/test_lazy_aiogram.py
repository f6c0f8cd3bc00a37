"""aiogram imported through bot.telegram.lazy_aiogram: every Telegram type and method still builds and validates,
whoever uses it first. Run in a fresh interpreter, as the service starts."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from bot.texts import templates_dir

SCRIPT = textwrap.dedent("""
    from bot.telegram import lazy_aiogram
    lazy_aiogram.install()  # as `qingshui run` does, before anything imports aiogram
    from pydantic import BaseModel
    from aiogram import methods, types
    from aiogram.methods.base import Response

    assert not types.Update.__pydantic_complete__, "the types were built at import"
    message = {"message_id": 5, "date": 0, "text": "JZ-017 80%", "chat": {"id": 7, "type": "private"},
               "from": {"id": 7, "is_bot": False, "first_name": "王"},
               "reply_markup": {"inline_keyboard": [[{"text": "保存", "callback_data": "q:save"}]]}}
    # a generic first, before any of its parts is built: the hardest order
    assert Response[types.Message].model_validate({"ok": True, "result": message}).result.chat.id == 7
    update = types.Update.model_validate({"update_id": 1, "message": message})
    assert update.message.reply_markup.inline_keyboard[0][0].callback_data == "q:save"
    send = methods.SendMessage(chat_id=7, text="<b>x</b>", reply_markup=types.InlineKeyboardMarkup(
        inline_keyboard=[[types.InlineKeyboardButton(text="a", callback_data="b")]]))
    assert send.model_dump(exclude_none=True)["reply_markup"]["inline_keyboard"][0][0]["text"] == "a"

    failed = []
    for module in (types, methods):
        for name in module.__all__:
            cls = getattr(module, name)
            generic = isinstance(cls, type) and cls.__dict__.get("__pydantic_generic_metadata__", {}).get("parameters")
            if isinstance(cls, type) and issubclass(cls, BaseModel) and not generic:
                try:
                    cls.model_rebuild()
                    assert cls.__pydantic_complete__
                except Exception as exc:
                    failed.append(f"{name}: {exc}")
    print(len(failed), failed[:5])
""")


def test_every_type_and_method_builds_on_first_use() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("0 "), done.stdout


def test_aiogram_imported_first_is_built_eagerly_and_still_works() -> None:
    # someone imports aiogram before our package: nothing is deferred, nothing breaks
    script = ("import aiogram\nfrom bot.telegram import lazy_aiogram\nlazy_aiogram.install()\n"
              "from aiogram import types\nassert types.Update.__pydantic_complete__")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_importing_bot_changes_nothing_in_the_process() -> None:
    """Only the entry points that start the service or the demo install the loader; a library user, a test
    or a command like `qingshui stats` gets aiogram as it is."""
    script = ("import sys\nbefore = list(sys.meta_path)\nimport bot, bot.store.models, bot.telegram.app\n"
              "assert sys.meta_path == before\nfrom aiogram import types\nassert types.Update.__pydantic_complete__")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


WARM_UP = textwrap.dedent("""
    from bot.telegram import lazy_aiogram
    lazy_aiogram.install()  # as `qingshui run` does
    from aiogram import methods, types
    from aiogram.methods.base import Response
    from bot import texts
    from bot.telegram.warm_up import warm_up

    models = (types.Update, Response[types.Message], methods.SendMessage, methods.EditMessageText,
              methods.AnswerCallbackQuery, methods.SendPhoto)
    built = lambda: [c.__name__ for c in models if c.__pydantic_complete__]
    before, compiled = built(), texts.module_of.cache_info().currsize
    warm_up()
    print(";".join(map(str, (before, compiled, built()))))
    print(texts.module_of.cache_info().currsize)
""")


def test_warm_up_builds_what_the_first_update_needs_before_polling() -> None:
    """`qingshui run` builds the models of an update and an answer and compiles the chat's templates in both
    languages before the first getUpdates, so a restart's first answers are not held up by them
    (bench/burst.py); the command line's, the robots' and the cockpit's texts are left for when used."""
    done = subprocess.run([sys.executable, "-c", WARM_UP], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.splitlines()[:2]
    before, compiled, after = first.split(";")
    assert not {"'Update'", "'SendMessage'", "'EditMessageText'", "'SendPhoto'"} & set(before.strip("[]").split(", "))
    assert compiled == "0"
    assert after == ("['Update', 'Response[Message]', 'SendMessage', 'EditMessageText', 'AnswerCallbackQuery', "
                     "'SendPhoto']")
    chat_files = {p.stem for p in (templates_dir() / "zh").iterdir()
                  if p.suffix in (".html", ".txt", ".md") and not p.name.startswith(("cli_", "channel_", "web_",
                                                                                        "demo_", "bulletin"))}
    assert {"quick", "project", "report", "buttons", "help", "start", "listing"} <= chat_files
    assert int(second) == 2 * len(chat_files)
