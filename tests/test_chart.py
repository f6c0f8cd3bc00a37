"""The digest chart: Chinese labels in a real CJK font (never a fallback without the glyphs), a phone-sized PNG."""

from __future__ import annotations

import struct
import warnings
from pathlib import Path

from matplotlib import font_manager
from matplotlib.ft2font import FT2Font

from bot.services.chart import FONT_FILE, Bar, chart_figure, cjk_family, county_chart

COUNTIES = "榆次区 太谷区 祁县 平遥县 介休市 灵石县 寿阳县 昔阳县 和顺县 左权县 榆社县".split()
WORDS = "".join(COUNTIES) + "已完工已开工未开工各县区项目进展完工率"


def _covers(font_path: str, text: str) -> bool:
    font = FT2Font(font_path)
    return all(font.get_char_index(ord(char)) != 0 for char in set(text))


def test_the_chart_family_resolves_to_the_bundled_cjk_font_with_every_glyph() -> None:
    family = cjk_family()
    path = font_manager.findfont(font_manager.FontProperties(family=family), fallback_to_default=False)
    assert Path(path).name == FONT_FILE
    assert _covers(path, WORDS)
    # the check can fail: matplotlib's own default font has none of these glyphs
    default = font_manager.findfont(font_manager.FontProperties(family="DejaVu Sans"))
    assert not _covers(default, "榆次区")


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_the_chart_renders_every_county_without_a_missing_glyph_as_a_phone_sized_png(tmp_path: Path) -> None:
    bars = [Bar(name, completed=i % 4, in_progress=2, not_started=i % 2, highlight=name == "祁县")
            for i, name in enumerate(COUNTIES)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        path = county_chart(bars, tmp_path / "chart.png", title="各县区项目进展 · 2026-11-02",
                            legend=("已完工", "已开工", "未开工"), rate_label="完工率 {rate}%")
    missing = [str(w.message) for w in caught if "missing from" in str(w.message) or "Glyph" in str(w.message)]
    assert missing == []
    width, height = _png_size(path)
    assert width == 1080 and 600 <= height <= 1800
    assert 20_000 <= path.stat().st_size <= 1_000_000


def test_county_names_with_dollar_signs_are_drawn_as_written_not_as_formulas(tmp_path: Path) -> None:
    names = ["$x^2$", "a$b$c", "$\\notacommand$", "祁县$"]
    bars = [Bar(name, completed=1, in_progress=1, not_started=1) for name in names]
    # mathtext would fail on `$\notacommand$` while drawing: the chart is drawn all the same
    path = county_chart(bars, tmp_path / "chart.png", title="$各县区$", legend=("已完工", "已开工", "未开工"))
    assert _png_size(path)[0] == 1080
    fig = chart_figure(bars, title="$各县区$", legend=("已完工", "已开工", "未开工"))
    [ax] = fig.axes
    assert [t.get_text() for t in ax.get_yticklabels()] == names
    texts = [*ax.get_yticklabels(), ax.title, *ax.texts, *ax.get_legend().get_texts()]
    assert texts and all(not t.get_parse_math() for t in texts)  # each one's literal text is what is drawn
