"""Long Telegram HTML split into parts that each fit and each parse (the fake Bot API's validator)."""

from __future__ import annotations

from bot.demo.fake_telegram.html_check import check_html, html_to_text
from bot.telegram.split import size, split_html


def _valid(parts: list[str], limit: int = 4096) -> None:
    assert parts
    for part in parts:
        assert size(part) <= limit, size(part)
        assert check_html(part) is None, (check_html(part), part[:200])


def _words(text: str) -> list[str]:
    return html_to_text(text).split()


def test_a_short_message_is_one_part_unchanged() -> None:
    text = "<b>周报</b>\n完工率 64%"
    assert split_html(text) == [text]
    assert split_html("  \n") == []


def test_many_lines_split_at_line_ends_and_lose_nothing() -> None:
    lines = [f"• <code>JZ-{i:03d}</code> <b>祁县城区雨污分流改造工程第{i}标段</b> &amp; 管网" for i in range(300)]
    text = "\n".join(lines)
    parts = split_html(text)
    assert len(parts) > 1
    _valid(parts)
    assert [line for part in parts for line in part.split("\n")] == lines
    assert _words("\n".join(parts)) == _words(text)


def test_a_tag_open_across_the_cut_is_closed_and_opened_again_with_its_attributes() -> None:
    body = "\n".join(f"第{i}行:项目进展正常,已完成管网铺设与道路恢复。" for i in range(400))
    text = f'<b>标题</b>\n<blockquote expandable><a href="https://example.org/x?a=1&amp;b=2">{body}</a></blockquote>\n末行'
    parts = split_html(text, limit=1000)
    assert len(parts) > 3
    _valid(parts, 1000)
    for part in parts[1:-1]:
        assert part.startswith('<blockquote expandable><a href="https://example.org/x?a=1&amp;b=2">')
        assert part.endswith("</a></blockquote>")
    assert _words("\n".join(parts)) == _words(text)


def test_a_cut_prefers_the_blank_line_between_sections() -> None:
    section = "\n".join(["<b>县区</b>"] + [f"• 项目{i} 进度 {i}%" for i in range(120)])
    text = "\n\n".join([section] * 3)
    parts = split_html(text, limit=2000)
    _valid(parts, 2000)
    # every part but the last ends at a section's end: nothing from a section spills into the next
    assert all(part.endswith("• 项目119 进度 119%") for part in parts[:-1])


def test_one_overlong_line_is_cut_between_characters_never_inside_a_tag_or_entity() -> None:
    line = "".join(f"<i>乙&amp;{i}</i>&lt;" for i in range(2000))
    parts = split_html(line)
    assert len(parts) > 1
    _valid(parts)
    assert "".join(html_to_text(p) for p in parts) == html_to_text(line)


def test_emoji_count_twice_as_telegram_counts_them() -> None:
    text = "🔴" * 3000  # 3,000 characters, 6,000 UTF-16 code units
    parts = split_html(text)
    assert len(parts) == 2
    _valid(parts)
