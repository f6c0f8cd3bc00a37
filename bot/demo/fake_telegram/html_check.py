"""Telegram-compatible parser for ``parse_mode=HTML``.

Mirrors the algorithm of TDLib's ``parse_html`` (which the Bot API uses), so
the error texts and the byte offsets in them match what real Telegram answers
after ``Bad Request: can't parse entities: ``.

One deliberate difference: TDLib keeps an ``&`` that does not start a known
entity literally, while ``strict_amp=True`` (the default) rejects it, because a
bare ``&`` almost always means the bot forgot to escape user input.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from typing import Any

ALLOWED_TAGS: frozenset[str] = frozenset(
    {
        "a",
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "tg-spoiler",
        "span",
        "tg-emoji",
        "code",
        "pre",
        "blockquote",
    }
)

_ENTITY_TYPE: dict[str, str] = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "tg-emoji": "custom_emoji",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "a": "text_link",
}

_NAMED_ENTITIES: dict[str, str] = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_SPACES = frozenset(" \t\r\n\v\f")
_SPECIAL = re.compile(r"[<&]")
_NAME_TOKEN = re.compile(r"[A-Za-z0-9.\-]*")


class HtmlParseError(ValueError):
    """Raised with the TDLib description (without the Bot API prefix)."""


@dataclass(frozen=True, slots=True)
class Entity:
    """A MessageEntity; offset and length are in UTF-16 code units like the Bot API."""

    type: str
    offset: int
    length: int
    url: str | None = None
    language: str | None = None
    custom_emoji_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"type": self.type, "offset": self.offset, "length": self.length}
        if self.url is not None:
            d["url"] = self.url
        if self.language is not None:
            d["language"] = self.language
        if self.custom_emoji_id is not None:
            d["custom_emoji_id"] = self.custom_emoji_id
        return d


def utf16_len(s: str) -> int:
    """Length as Telegram counts it (astral characters count twice)."""
    if s.isascii():
        return len(s)
    return len(s.encode("utf-16-le")) // 2


def _byte_offset(text: str, pos: int) -> int:
    # Only computed for error messages, so the O(n) encode is fine.
    return len(text[:pos].encode("utf-8", "surrogatepass"))


def _decode_entity(text: str, pos: int, strict: bool) -> tuple[str, int] | None:
    """Decode an HTML entity at ``text[pos] == '&'``; return (char, next_pos) or None."""
    n = len(text)
    end = pos + 1
    if end < n and text[end] == "#":
        end += 1
        hexa = end < n and text[end] in "xX"
        if hexa:
            end += 1
        start = end
        digits = "0123456789abcdefABCDEF" if hexa else "0123456789"
        while end < n and text[end] in digits:
            end += 1
        if end == start or end - pos >= 10:
            return None
        code = int(text[start:end], 16 if hexa else 10)
        if code == 0 or code >= 0x10FFFF or 0xD800 <= code <= 0xDFFF:
            return None
        char = chr(code)
    else:
        start = end
        while end < n and text[end].isascii() and text[end].isalpha():
            end += 1
        char_or_none = _NAMED_ENTITIES.get(text[start:end])
        if char_or_none is None:
            return None
        char = char_or_none
    if end < n and text[end] == ";":
        return char, end + 1
    if strict:
        return None  # TDLib tolerates a missing ';', but it is never intended
    return char, end


class _Open:
    __slots__ = ("argument", "begin_pos", "offset", "out_index", "tag")

    def __init__(self, tag: str, argument: str, offset: int, out_index: int, begin_pos: int) -> None:
        self.tag = tag
        self.argument = argument
        self.offset = offset  # code-point offset in the output
        self.out_index = out_index  # index into the output chunk list
        self.begin_pos = begin_pos


def parse_html(text: str, *, strict_amp: bool = True) -> tuple[str, list[Entity]]:
    """Parse Telegram HTML into (plain text, entities); raise HtmlParseError like Telegram."""
    out: list[str] = []
    out_len = 0  # code points in "".join(out); converted to UTF-16 units at the end
    stack: list[_Open] = []
    entities: list[Entity] = []
    n = len(text)
    i = 0
    while i < n:
        m = _SPECIAL.search(text, i)
        if m is None:
            out.append(text[i:])
            out_len += n - i
            break
        j = m.start()
        if j > i:
            out.append(text[i:j])
            out_len += j - i
        i = j
        if text[i] == "&":
            decoded = _decode_entity(text, i, strict_amp)
            if decoded is None:
                if strict_amp:
                    raise HtmlParseError(f'Unescaped "&" at byte offset {_byte_offset(text, i)}')
                out.append("&")
                out_len += 1
                i += 1
            else:
                out.append(decoded[0])
                out_len += 1
                i = decoded[1]
            continue

        begin_pos = i
        i += 1
        if i < n and text[i] == "/":
            # End tag.
            if not stack:
                raise HtmlParseError(f"Unexpected end tag at byte offset {_byte_offset(text, begin_pos)}")
            i += 1
            start = i
            while i < n and text[i] not in _SPACES and text[i] != ">":
                i += 1
            end_name = text[start:i].lower()
            while i < n and text[i] in _SPACES:
                i += 1
            if i >= n or text[i] != ">":
                raise HtmlParseError(f"Unclosed end tag at byte offset {_byte_offset(text, begin_pos)}")
            i += 1
            top = stack.pop()
            if end_name and end_name != top.tag:
                raise HtmlParseError(
                    f"Unmatched end tag at byte offset {_byte_offset(text, begin_pos)}, "
                    f'expected "</{top.tag}>", found "</{end_name}>"'
                )
            _close(top, out, out_len, entities)
            continue

        # Start tag.
        start = i
        while i < n and text[i] not in _SPACES and text[i] != ">":
            i += 1
        if i >= n:
            raise HtmlParseError(f"Unclosed start tag at byte offset {_byte_offset(text, begin_pos)}")
        tag = text[start:i].lower()
        if tag not in ALLOWED_TAGS:
            raise HtmlParseError(f'Unsupported start tag "{tag}" at byte offset {_byte_offset(text, begin_pos)}')
        argument = ""
        expandable = False
        while i < n and text[i] != ">":
            while i < n and text[i] in _SPACES:
                i += 1
            if i < n and text[i] == ">":
                break
            attr_start = i
            while i < n and text[i] not in _SPACES and text[i] not in "=>":
                i += 1
            attr = text[attr_start:i].lower()
            if not attr:
                raise HtmlParseError(
                    f'Empty attribute name in the tag "{tag}" at byte offset {_byte_offset(text, begin_pos)}'
                )
            while i < n and text[i] in _SPACES:
                i += 1
            if i >= n or text[i] != "=":
                if tag == "blockquote" and attr == "expandable":
                    expandable = True
                    continue
                if i >= n:
                    raise HtmlParseError(f"Unclosed start tag at byte offset {_byte_offset(text, begin_pos)}")
                raise HtmlParseError(
                    f'Expected equal sign in declaration of an attribute of the tag "{tag}" '
                    f"at byte offset {_byte_offset(text, begin_pos)}"
                )
            i += 1
            while i < n and text[i] in _SPACES:
                i += 1
            if i >= n:
                raise HtmlParseError(f"Unclosed start tag at byte offset {_byte_offset(text, begin_pos)}")
            if text[i] not in "'\"":
                tm = _NAME_TOKEN.match(text, i)
                assert tm is not None  # the pattern matches the empty string
                value = tm.group().lower()
                token_pos = i
                i = tm.end()
                if i < n and text[i] not in _SPACES and text[i] != ">":
                    raise HtmlParseError(f"Unexpected end of name token at byte offset {_byte_offset(text, token_pos)}")
            else:
                quote = text[i]
                i += 1
                parts: list[str] = []
                while i < n and text[i] != quote:
                    if text[i] == "&":
                        decoded = _decode_entity(text, i, strict_amp)
                        if decoded is not None:
                            parts.append(decoded[0])
                            i = decoded[1]
                            continue
                        if strict_amp:
                            raise HtmlParseError(f'Unescaped "&" at byte offset {_byte_offset(text, i)}')
                    parts.append(text[i])
                    i += 1
                if i < n:
                    i += 1
                value = "".join(parts)
            if i >= n:
                raise HtmlParseError(f"Unclosed start tag at byte offset {_byte_offset(text, begin_pos)}")
            if tag == "a" and attr == "href":
                argument = value
            elif tag == "code" and attr == "class" and value.startswith("language-"):
                argument = value[len("language-") :]
            elif tag == "span" and attr == "class" and value.startswith("tg-"):
                argument = value[len("tg-") :]
            elif tag == "tg-emoji" and attr == "emoji-id":
                argument = value
            # Other attributes are ignored, as TDLib does.
        if tag == "span" and argument != "spoiler":
            raise HtmlParseError(
                f'Tag "span" must have class "tg-spoiler" at byte offset {_byte_offset(text, begin_pos)}'
            )
        if tag == "blockquote" and expandable:
            argument = "expandable"
        i += 1  # skip '>'
        stack.append(_Open(tag, argument, out_len, len(out), begin_pos))

    if stack:
        raise HtmlParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1].tag}"')
    result = "".join(out)
    if entities and utf16_len(result) != len(result):
        entities = _to_utf16(result, entities)
    entities.sort(key=lambda e: (e.offset, -e.length))
    return result, entities


def _to_utf16(text: str, entities: list[Entity]) -> list[Entity]:
    """Convert code-point offsets to UTF-16 ones (astral characters take two units)."""
    astral = [i for i, c in enumerate(text) if ord(c) > 0xFFFF]

    def conv(pos: int) -> int:
        return pos + bisect.bisect_left(astral, pos)

    return [
        Entity(e.type, conv(e.offset), conv(e.offset + e.length) - conv(e.offset), e.url, e.language, e.custom_emoji_id)
        for e in entities
    ]


def _close(top: _Open, out: list[str], out_len: int, entities: list[Entity]) -> None:
    length = out_len - top.offset
    kind = _ENTITY_TYPE[top.tag]
    if top.tag == "tg-emoji":
        if not top.argument.isdigit():
            raise HtmlParseError("Invalid custom emoji identifier specified")
        if length > 0:
            entities.append(Entity("custom_emoji", top.offset, length, custom_emoji_id=top.argument))
        return
    if length <= 0:
        return  # Telegram silently drops empty entities
    if top.tag == "a":
        url = top.argument or "".join(out[top.out_index :])
        if "://" not in url and not url.startswith(("tg:", "mailto:")):
            url = "http://" + url  # Telegram normalises scheme-less links
        entities.append(Entity(kind, top.offset, length, url=url))
    elif top.tag == "pre":
        # <pre><code class="language-x">…</code></pre> becomes one pre entity with a language.
        if entities:
            last = entities[-1]
            if last.type == "code" and last.offset == top.offset and last.length == length and last.language:
                entities[-1] = Entity("pre", top.offset, length, language=last.language)
                return
        entities.append(Entity("pre", top.offset, length))
    elif top.tag == "code":
        entities.append(Entity("code", top.offset, length, language=top.argument or None))
    elif top.tag == "blockquote":
        kind = "expandable_blockquote" if top.argument == "expandable" else "blockquote"
        entities.append(Entity(kind, top.offset, length))
    else:
        entities.append(Entity(kind, top.offset, length))


def html_to_text(text: str, *, strict_amp: bool = True) -> str:
    """Plain text Telegram would show after entity parsing (raises HtmlParseError)."""
    return parse_html(text, strict_amp=strict_amp)[0]


def check_html(text: str, *, strict_amp: bool = True) -> str | None:
    """Return None if Telegram would accept ``text``, else the error description."""
    try:
        parse_html(text, strict_amp=strict_amp)
    except HtmlParseError as e:
        return str(e)
    return None


def finalize_entities(entities: list[Entity]) -> list[dict[str, Any]]:
    """Entities as Bot API dicts, with code language only kept on pre (as Telegram returns)."""
    result = []
    for e in entities:
        if e.type == "code" and e.language is not None:
            e = Entity("code", e.offset, e.length)
        result.append(e.to_dict())
    return result
