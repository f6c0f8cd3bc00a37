"""Chinese texts use full-width punctuation after Chinese text: a reader of templates/zh never sees a
half-width , : ; ! ? ( ) next to a Chinese character (README "Layout": templates/ holds every word).

The check scans each zh template's source, so every branch of every macro is read, not only the one a
rendering takes. What a user reads is the text between the tags: Jinja statements and comments
({% %}, {# #}) are dropped, HTML tags (attributes, URLs inside them) are dropped, and what the user types
or a machine reads stays as it is — <code>/<pre> examples, <style>, URLs written out, argparse's
%(name)s placeholders. A printed value ({{ }}) stands for Chinese text: in a zh template it is a name, a
county, a label or a number inside a Chinese sentence, so `{{ person }}:` and `({{ county }})` are
held to the same rule. Chinese string literals inside Jinja tags (labels looked up in a dict) are
checked on their own."""

from __future__ import annotations

import re

import pytest

from bot.texts import templates_dir

HALF = ",:;!?()"
JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)
LITERAL = re.compile(r'"([^"\n]*)"|\'([^\'\n]*)\'')
# What the user types or a program reads, kept as written.
VERBATIM = re.compile(r"<(code|pre|style|script)\b[^>]*>.*?</\1>", re.S)
HTML_TAG = re.compile(r"<[^>]*>")
URL = re.compile(r"[a-z][a-z0-9+.-]*://[^\s（），。、；]*")
PRINTF = re.compile(r"%\([a-z_]+\)[a-z]|%[a-z]")

# A Jinja expression's stand-in (read as Chinese) and a verbatim stretch's (read as Latin).
EXPRESSION, VERBATIM_MARK = "字", "0"


def is_chinese(char: str) -> bool:
    """Han characters, CJK punctuation (、。「」) and full-width forms (，：（）)."""
    o = ord(char)
    return (
        0x3400 <= o <= 0x4DBF
        or 0x4E00 <= o <= 0x9FFF
        or 0xF900 <= o <= 0xFAFF
        or 0x3000 <= o <= 0x303F
        or 0xFF01 <= o <= 0xFF5E
    )


def reader_text(source: str, html: bool) -> list[tuple[int, str]]:
    """What a reader sees of a template source: (index in source, char); stand-ins have index -1."""
    kind = [""] * len(source)  # "" text, "drop", "expr" or "verbatim"
    for m in JINJA.finditer(source):
        mark = "expr" if m.group().startswith("{{") else "drop"
        kind[m.start() : m.end()] = [mark] * (m.end() - m.start())
    blanked = "".join(ch if kind[i] == "" else "\0" for i, ch in enumerate(source))
    spans: list[tuple[re.Pattern[str], str]] = [(URL, "verbatim"), (PRINTF, "verbatim")]
    if html:
        spans = [(VERBATIM, "verbatim"), (HTML_TAG, "drop"), *spans]
    for pattern, mark in spans:
        for m in pattern.finditer(blanked):
            for i in range(m.start(), m.end()):
                if kind[i] == "":
                    kind[i] = mark
            blanked = blanked[: m.start()] + "\0" * (m.end() - m.start()) + blanked[m.end() :]
    text: list[tuple[int, str]] = []
    for i, ch in enumerate(source):
        if kind[i] == "":
            text.append((i, ch))
        elif kind[i] in ("expr", "verbatim") and (i == 0 or kind[i - 1] != kind[i]):
            text.append((-1, EXPRESSION if kind[i] == "expr" else VERBATIM_MARK))
    return text


def half_width_next_to_chinese(text: list[tuple[int, str]]) -> list[int]:
    """Indices (in the source) of half-width punctuation with a Chinese character beside it."""
    found = []
    for k, (i, ch) in enumerate(text):
        if i < 0 or ch not in HALF:
            continue
        before = text[k - 1][1] if k > 0 else ""
        after = text[k + 1][1] if k + 1 < len(text) else ""
        if (before and is_chinese(before)) or (after and is_chinese(after)):
            found.append(i)
    return found


def literals(source: str) -> list[tuple[int, str]]:
    """String literals inside Jinja tags that hold Chinese: (index of the literal's text, text)."""
    found = []
    for tag in JINJA.finditer(source):
        for m in LITERAL.finditer(tag.group()):
            value = m.group(1) if m.group(1) is not None else m.group(2)
            if any(is_chinese(c) for c in value):
                found.append((tag.start() + m.start() + 1, value))
    return found


def _where(source: str, index: int) -> str:
    line = source.count("\n", 0, index) + 1
    start = source.rfind("\n", 0, index) + 1
    end = source.find("\n", index)
    text = source[start : end if end >= 0 else len(source)]
    column = index - start
    return f"line {line}: …{text[max(0, column - 25) : column]}⟦{source[index]}⟧{text[column + 1 : column + 25]}…"


def _zh_templates() -> list[str]:
    root = templates_dir() / "zh"
    return sorted(p.name for p in root.iterdir() if p.suffix in (".html", ".txt"))


@pytest.mark.parametrize("name", _zh_templates())
def test_chinese_text_has_no_half_width_punctuation_beside_it(name: str) -> None:
    source = (templates_dir() / "zh" / name).read_text(encoding="utf-8")
    bad = [_where(source, i) for i in half_width_next_to_chinese(reader_text(source, name.endswith(".html")))]
    for start, value in literals(source):
        text = [(start + k, ch) for k, ch in enumerate(value)]
        bad += [_where(source, i) for i in half_width_next_to_chinese(text)]
    assert not bad, f"zh/{name}: half-width punctuation beside Chinese text:\n" + "\n".join(bad)


@pytest.mark.parametrize("name", _zh_templates())
def test_parentheses_are_pairs_of_one_width(name: str) -> None:
    """（ closes with ）, ( with ): a pair is never half one width, half the other."""
    source = (templates_dir() / "zh" / name).read_text(encoding="utf-8")
    opened: list[tuple[int, str]] = []
    bad = []
    for i, ch in reader_text(source, name.endswith(".html")):
        if ch in "(（":
            opened.append((i, ch))
        elif ch in ")）" and opened:
            start, opener = opened.pop()
            if (opener == "(") != (ch == ")"):
                bad.append(f"{_where(source, start)} closed by {_where(source, i)}")
    assert not bad, f"zh/{name}: parentheses of two widths:\n" + "\n".join(bad)


def test_the_check_sees_what_a_reader_sees() -> None:
    def flagged(source: str, html: bool = True) -> list[str]:
        return [source[i] for i in half_width_next_to_chinese(reader_text(source, html))]

    assert flagged("状态:{{ x }}") == [":"]
    assert flagged("{{ person }}:{{ missing }} 个") == [":"]  # a printed value is Chinese text
    assert flagged("本月({{ period }})") == ["(", ")"]
    assert flagged('<a href="a,b">链接</a>') == []  # attributes are not read
    assert flagged("例如 <code>JZ-017 80%,完工</code>") == []  # what the user types stays as typed
    assert flagged("请写成 http://主机:端口 或") == []  # a URL stays a URL
    assert flagged("每天 09:30 运行") == []  # a time
    assert flagged("Telegram (test): ok") == []  # English
    assert flagged("{% if a %}已报{% endif %}") == []
