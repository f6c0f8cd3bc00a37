"""Splitting a long Telegram HTML message into parts under the 4,096-character limit.

Parts end at line boundaries, preferably at a blank line (between sections); a tag open across the
cut is closed at the end of one part and opened again, with its attributes, at the start of the next,
so every part parses on its own. A single line too long for a part is cut between characters, never
inside a tag or an entity (`&amp;`). Lengths are counted in UTF-16 code units over the HTML source,
which is never shorter than the text Telegram counts, so a part that fits here fits there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

TELEGRAM_LIMIT = 4096
_TOKEN = re.compile(r"<[^>]*>|&#?[A-Za-z0-9]+;|[^<&]|[<&]")  # a tag, an entity, or one character
_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9-]*)[^>]*>")


def size(text: str) -> int:
    """Length as Telegram counts it (characters outside the BMP, like most emoji, count twice)."""
    return len(text) if text.isascii() else len(text.encode("utf-16-le")) // 2


Stack = tuple[tuple[str, str], ...]  # open tags: (name, the opening tag as written)


def _after(stack: Stack, text: str) -> Stack:
    """The open tags after `text`."""
    if "<" not in text:
        return stack
    opened = list(stack)
    for match in _TAG.finditer(text):
        closing, name = match.group(1), match.group(2).lower()
        if not closing:
            opened.append((name, match.group(0)))
            continue
        for index in range(len(opened) - 1, -1, -1):
            if opened[index][0] == name:
                del opened[index]
                break
    return tuple(opened)


def _opening(stack: Stack) -> str:
    return "".join(tag for _, tag in stack)


def _closing(stack: Stack) -> str:
    return "".join(f"</{name}>" for name, _ in reversed(stack))


@dataclass
class _Part:
    start: Stack
    lines: list[str] = field(default_factory=list)
    stacks: list[Stack] = field(default_factory=list)  # open tags after each line
    length: int = 0  # size of "\n".join(lines)

    @property
    def end(self) -> Stack:
        return self.stacks[-1] if self.stacks else self.start

    def size_with(self, line: str, stack: Stack) -> int:
        joined = self.length + (1 if self.lines else 0) + size(line)
        return size(_opening(self.start)) + joined + size(_closing(stack))

    def add(self, line: str, stack: Stack) -> None:
        self.length += (1 if self.lines else 0) + size(line)
        self.lines.append(line)
        self.stacks.append(stack)

    def text(self, upto: int | None = None) -> str:
        lines = self.lines[:upto]
        stacks = self.stacks[:upto]
        end = stacks[-1] if stacks else self.start
        body = "\n".join(lines).strip("\n")
        return _opening(self.start) + body + _closing(end)

    def section_break(self, limit: int) -> int | None:
        """The last blank line past half the limit, where a cut reads best."""
        length = size(_opening(self.start))
        best = None
        for index, line in enumerate(self.lines):
            if not line.strip() and index and length >= limit // 2:
                best = index
            length += size(line) + 1
        return best


def _cut_line(line: str, stack: Stack, limit: int) -> list[tuple[str, Stack, Stack]]:
    """A line too long for one part, in pieces that fit: (piece, open tags before, open tags after)."""
    pieces: list[tuple[str, Stack, Stack]] = []
    start, current, piece, length = stack, stack, "", size(_opening(stack))
    for token in _TOKEN.findall(line):
        following = _after(current, token)
        if piece and length + size(token) + size(_closing(following)) > limit:
            pieces.append((piece, start, current))
            start, piece, length = current, "", size(_opening(current))
        piece += token
        length += size(token)
        current = following
    if piece:
        pieces.append((piece, start, current))
    return pieces


def split_html(text: str, limit: int = TELEGRAM_LIMIT) -> list[str]:
    """`text` in parts of at most `limit`, each valid Telegram HTML on its own (see the module doc)."""
    if size(text) <= limit:
        return [text] if text.strip() else []
    parts: list[str] = []
    part = _Part(start=())

    def flush(cut: int | None = None) -> None:
        """Emit the part; with `cut` (a blank line's index) only the lines before it, keeping the rest."""
        nonlocal part
        if cut is not None:
            rest = _Part(start=part.stacks[cut - 1])
            for line, after in zip(part.lines[cut + 1:], part.stacks[cut + 1:], strict=True):
                rest.add(line, after)
            if rest.lines and size(rest.text()) > limit:
                cut = None  # re-opened tags would not fit: cut at the end instead
        if cut is None:
            rest = _Part(start=part.end)
        if any(line.strip() for line in part.lines[:cut]):
            parts.append(part.text(cut))
        part = rest

    for line in text.split("\n"):
        if not part.lines and not line.strip():
            continue  # no part starts with a blank line
        stack = _after(part.end, line)
        if part.size_with(line, stack) <= limit:
            part.add(line, stack)
            continue
        if part.lines:
            flush(part.section_break(limit))
            if part.lines and part.size_with(line, _after(part.end, line)) > limit:
                flush()
            stack = _after(part.end, line)
            if part.size_with(line, stack) <= limit:
                part.add(line, stack)
                continue
        for piece, _before, after in _cut_line(line, part.end, limit):
            if part.lines and part.size_with(piece, after) > limit:
                flush()
            part.add(piece, after)
    flush()
    return parts


__all__ = ["TELEGRAM_LIMIT", "size", "split_html"]
