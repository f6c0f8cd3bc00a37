"""The digest's chart: per county, a horizontal bar of completed / in progress / not started projects.

Drawn for a phone (1080 px wide, large type) with matplotlib's Agg renderer through the object API
(no pyplot state, safe in a worker thread). Chinese labels use Noto Sans CJK SC from the `mplfonts`
package, registered from the installed package's own file: system fonts are never relied on, so the
chart looks the same on every server and never falls back to boxes.

matplotlib is imported when a chart is first drawn, not with this module: the service loads the
digest job at every start (to catch up), and most starts draw no chart.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from bot.domain.rates import percent

if TYPE_CHECKING:
    from matplotlib.figure import Figure

FONT_PACKAGE = "mplfonts"
FONT_FILE = "NotoSansCJKsc-Regular.otf"
WIDTH_PX = 1080
DPI = 100
COLOURS = ("#2e7d32", "#f9a825", "#bdbdbd")  # completed, in progress, not started
TITLE_PT, LABEL_PT, NUMBER_PT = 26, 21, 17


def cjk_font_path() -> Path:
    """The CJK font shipped by mplfonts (a dependency); a clear error if the package lacks it."""
    path = Path(str(resources.files(FONT_PACKAGE))) / "fonts" / FONT_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{FONT_FILE} not found in the {FONT_PACKAGE} package at {path}")
    return path


@lru_cache(maxsize=1)
def cjk_family() -> str:
    """Register the CJK font with matplotlib (once) and return its family name."""
    from matplotlib import font_manager

    path = cjk_font_path()
    font_manager.fontManager.addfont(str(path))
    return font_manager.FontProperties(fname=str(path)).get_name()


@dataclass(frozen=True)
class Bar:
    label: str  # the county
    completed: int
    in_progress: int
    not_started: int
    highlight: bool = False  # the reader's own county, in colour

    @property
    def total(self) -> int:
        return self.completed + self.in_progress + self.not_started


def _style() -> dict[str, object]:
    # Every label is a county's name or a template's words, never a formula: with parse_math off a
    # county named `$x^2$` or `a$b$c` is drawn as written, not handed to mathtext (which may fail).
    return {"font.family": [cjk_family()], "axes.unicode_minus": False, "text.parse_math": False,
            "text.usetex": False}


def county_chart(bars: list[Bar], path: Path, *, title: str, legend: tuple[str, str, str],
                 rate_label: str = "{rate}%") -> Path:
    """Draw the bars (top to bottom in the given order) as a PNG at `path`; returns the path.

    `legend` names the three segments; `rate_label` formats the completion rate shown at each bar's end."""
    from matplotlib import rc_context

    with rc_context(_style()):
        fig = chart_figure(bars, title=title, legend=legend, rate_label=rate_label)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format="png", dpi=DPI)
    return path


def chart_figure(bars: list[Bar], *, title: str, legend: tuple[str, str, str], rate_label: str = "{rate}%") -> Figure:
    """The chart as a matplotlib figure, not yet drawn (see `county_chart`)."""
    from matplotlib import rc_context
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    rows = max(len(bars), 1)
    height_in = 2.4 + 0.72 * rows
    with rc_context(_style()):
        fig = Figure(figsize=(WIDTH_PX / DPI, height_in), dpi=DPI)
        ax = fig.subplots()
        labels = [b.label for b in bars]
        positions = list(range(len(bars)))[::-1]  # first bar on top
        left = [0] * len(bars)
        widest = max((b.total for b in bars), default=1) or 1
        for index, (name, colour) in enumerate(zip(legend, COLOURS, strict=True)):
            values = [(b.completed, b.in_progress, b.not_started)[index] for b in bars]
            drawn = ax.barh(positions, values, left=left, color=colour, label=name, height=0.68)
            for rect, value in zip(drawn, values, strict=True):
                if value and value / widest > 0.045:  # a number only where it fits
                    ax.text(rect.get_x() + rect.get_width() / 2, rect.get_y() + rect.get_height() / 2, str(value),
                            ha="center", va="center", fontsize=NUMBER_PT,
                            color="white" if index == 0 else "#212121")
            left = [a + b for a, b in zip(left, values, strict=True)]
        for pos, bar in zip(positions, bars, strict=True):
            rate = percent(bar.completed, bar.total)
            ax.text(bar.total + widest * 0.015, pos, rate_label.format(rate=rate), va="center", fontsize=NUMBER_PT,
                    color="#424242")
        ax.set_yticks(positions, labels, fontsize=LABEL_PT)
        for tick, bar in zip(ax.get_yticklabels(), bars, strict=True):
            if bar.highlight:  # the font has one weight: colour marks the reader's county
                tick.set_color("#0d47a1")
        ax.set_xlim(0, widest * 1.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.tick_params(axis="x", labelsize=NUMBER_PT)
        ax.tick_params(axis="y", length=0)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        ax.set_title(title, fontsize=TITLE_PT, pad=58, loc="left")
        ax.legend(loc="lower left", bbox_to_anchor=(0, 1.0), ncol=3, fontsize=LABEL_PT - 3, frameon=False,
                  handlelength=1.2, columnspacing=1.2)
        fig.tight_layout()
    return fig


__all__ = ["Bar", "chart_figure", "cjk_family", "cjk_font_path", "county_chart"]
