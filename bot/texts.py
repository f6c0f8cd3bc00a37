"""Every word a user reads: Jinja2 macros in templates/<lang>/<file>.html (Telegram HTML, autoescaped),
.txt (plain, for the command line) or .md (markdown, for group robots). A text is named `file.macro`,
e.g. `report.saved`."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateNotFound, select_autoescape
from markupsafe import Markup

LANGUAGES = ("zh", "en")


def templates_dir() -> Path:
    return Path(str(resources.files("templates")))


def _pct(value: object) -> str:
    return "—" if value is None else f"{value}%"


def _num(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, Decimal | float):
        text = f"{value:,.2f}".rstrip("0").rstrip(".")
        return text
    return str(value)


def _date(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


# What a group robot's markdown would read as markup, turned into its full-width twin: a project named
# `*新建* [管网]` shows as written in WeCom, DingTalk and Feishu alike (their escaping rules differ).
_MARKDOWN_TWINS = str.maketrans({"*": "＊", "_": "＿", "[": "［", "]": "］", "`": "｀", "#": "＃", "<": "＜",
                                 ">": "＞", "~": "～", "|": "｜", "\\": "＼"})


def _md(value: object) -> str:
    """A user's words (a project's name, a county, a code) for robot markdown: never read as markup."""
    return str(value).translate(_MARKDOWN_TWINS)


def _signed(value: object) -> str:
    if value is None:
        return "—"
    number = int(value)  # type: ignore[call-overload]
    return f"+{number}" if number > 0 else str(number)


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(templates_dir())),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,  # the templates ship with the package: no file checks on every render
    )
    env.filters.update(pct=_pct, num=_num, date=_date, signed=_signed, md=_md)
    return env


@cache
def module_of(lang: str, file: str) -> Any:
    """The compiled template `lang/file` (.html, .txt or .md), compiled once per process."""
    env = environment()
    for ext in ("html", "txt", "md"):
        try:
            return env.get_template(f"{lang}/{file}.{ext}").module
        except TemplateNotFound:
            continue
    raise KeyError(f"no template {lang}/{file}.html, .txt or .md")


def render(lang: str | None, name: str, **context: Any) -> str:
    """Render macro `name` (`file.macro`) in `lang` (falls back to zh); trimmed of outer blank lines."""
    file, _, macro_name = name.rpartition(".")
    if not file:
        raise KeyError(f"text name must be file.macro, got {name!r}")
    module = module_of(lang if lang in LANGUAGES else "zh", file)
    macro = getattr(module, macro_name, None)
    if macro is None:
        raise KeyError(f"no macro {macro_name!r} in {lang}/{file}")
    result = macro(**context)
    return str(result).strip("\n") if isinstance(result, Markup | str) else str(result)


class Texts:
    """Bound to a default language, handed to handlers and jobs."""

    def __init__(self, default_language: str = "zh") -> None:
        self.default_language = default_language

    def __call__(self, lang: str | None, name: str, **context: Any) -> str:
        return render(lang or self.default_language, name, **context)
