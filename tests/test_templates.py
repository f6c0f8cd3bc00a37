"""Every template file exists in both languages, with the same macros taking the same arguments, and
every macro renders; a Telegram HTML macro fed hostile values still makes a message Telegram accepts.

Generic over all files in templates/, whoever wrote them: each macro is called with stand-in values
(`Stand`) that behave like any object a template may receive — attributes, items, iteration,
numbers, comparisons — and print as a string of HTML fragments, so a missing escape or an
unbalanced tag shows up as an HTML error."""

from __future__ import annotations

from typing import Any

import pytest
from jinja2 import nodes

from bot.demo.fake_telegram.html_check import HtmlParseError, parse_html
from bot.texts import LANGUAGES, environment, render, templates_dir

HOSTILE = '<script>&amp; "x" </b> &'


class Stand:
    """Whatever a template asks of it, it answers with itself (or something harmless)."""

    def __init__(self, depth: int = 0) -> None:
        self._depth = depth

    def __str__(self) -> str:
        return HOSTILE

    def __format__(self, spec: str) -> str:
        if not spec:
            return str(self)
        try:
            return format(1, spec)
        except ValueError:
            return format(str(self), spec)

    def __getattr__(self, name: str) -> Stand:
        if name.startswith("__"):
            raise AttributeError(name)
        return Stand(self._depth + 1)

    def __getitem__(self, key: object) -> Stand:
        return Stand(self._depth + 1)

    def __call__(self, *args: object, **kwargs: object) -> Stand:
        return Stand(self._depth + 1)

    def __iter__(self) -> Any:
        return iter([Stand(self._depth + 1), Stand(self._depth + 1)] if self._depth < 4 else [])

    def __len__(self) -> int:
        return 2

    def __bool__(self) -> bool:
        return True

    def __int__(self) -> int:
        return 1

    __index__ = __int__

    def __float__(self) -> float:
        return 1.0

    def __round__(self, ndigits: int | None = None) -> int:
        return 1

    def __abs__(self) -> Stand:
        return self

    __neg__ = __pos__ = __abs__

    def __eq__(self, other: object) -> bool:
        return other is self

    def __hash__(self) -> int:
        return id(self)

    def __lt__(self, other: object) -> bool:
        return False

    __le__ = __gt__ = __ge__ = __lt__

    def __contains__(self, item: object) -> bool:
        return False

    def _number(self, other: object) -> Stand:
        return Stand(self._depth)

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _number
    __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = __mod__ = __rmod__ = _number


def _files(lang: str) -> set[str]:
    root = templates_dir() / lang
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.suffix in (".html", ".txt", ".md")}


def _macros(lang: str, file: str) -> dict[str, tuple[tuple[str, ...], int]]:
    """Top-level macros: name -> (argument names, how many have defaults)."""
    source = (templates_dir() / lang / file).read_text(encoding="utf-8")
    tree = environment().parse(source)
    return {
        m.name: (tuple(a.name for a in m.args), len(m.defaults))
        for m in tree.body
        if isinstance(m, nodes.Macro)
    }


ALL = sorted(_files("zh") | _files("en"))
CASES = [
    pytest.param(lang, file, name, id=f"{lang}/{file}:{name}")
    for lang in LANGUAGES
    for file in ALL
    if (templates_dir() / lang / file).exists()
    for name in _macros(lang, file)
    if not name.startswith("_")  # private helpers: rendered through the public macros that call them
]


def test_both_languages_have_the_same_files() -> None:
    assert _files("zh"), "no templates found"
    assert _files("zh") == _files("en")


@pytest.mark.parametrize("file", ALL)
def test_both_languages_define_the_same_macros_with_the_same_arguments(file: str) -> None:
    zh, en = _macros("zh", file), _macros("en", file)
    assert zh, f"{file} defines no macro"
    assert zh == en


@pytest.mark.parametrize(("lang", "file", "name"), CASES)
def test_every_macro_renders(lang: str, file: str, name: str) -> None:
    args, _ = _macros(lang, file)[name]
    macro = getattr(environment().get_template(f"{lang}/{file}").module, name)
    text = str(macro(**{arg: Stand() for arg in args}))
    assert isinstance(text, str)
    if file.endswith(".html") and not text.lstrip().lower().startswith("<!doctype"):
        try:
            parse_html(text, strict_amp=True)
        except HtmlParseError as exc:
            pytest.fail(f"{lang}/{file} {name} is not valid Telegram HTML with hostile values: {exc}\n{text}")


def test_macros_render_real_values_and_escape_them() -> None:
    hostile = "<b>名</b> & <script>"
    text = render("zh", "start.bound", person=type("P", (), {"name": hostile, "role": "contact"})(), county="祁县")
    assert "&lt;b&gt;名&lt;/b&gt; &amp; &lt;script&gt;" in text
    assert "<script>" not in text
    assert render("en", "buttons.project", code="JZ-017", title="A & B") == "JZ-017 A & B"  # buttons: plain text
