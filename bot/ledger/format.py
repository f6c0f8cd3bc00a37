"""The ledger file's shape: its columns, how a header is recognised, status labels, sheet names.

The contract is README's "The ledger file": Chinese headers, English accepted too, in any order.
A header is recognised from its Chinese label, its English name, or both (`项目编号 code`), with
full-width characters, units in parentheses and surrounding spaces tolerated."""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

from bot.domain.project_code import MAX_CODE_LENGTH
from bot.domain.states import ProjectStatus

# The 11 counties of Jinzhong in the programme's order: used for the sort order of counties an
# import creates, and for the template's drop-down when no county is known yet.
JINZHONG_COUNTIES = (
    "榆次区", "太谷区", "祁县", "平遥县", "介休市", "灵石县", "寿阳县", "昔阳县", "和顺县", "左权县", "榆社县",
)


@dataclass(frozen=True)
class Column:
    key: str  # the Project field (or milestone key) the column fills
    zh: str  # the Chinese header, with its unit
    kind: str  # text | date | money | progress | status
    aliases: tuple[str, ...] = ()  # other spellings, already normalised (see `normalise`)
    required: bool = False
    max_len: int | None = None  # the database column's length, for text

    @property
    def header(self) -> str:
        """The header an export or template writes: Chinese for people, English for scripts."""
        return f"{self.zh} {self.key}"


LEDGER_COLUMNS: tuple[Column, ...] = (
    Column("code", "项目编号", "text", ("编号", "项目代码", "project_code"), required=True, max_len=MAX_CODE_LENGTH),
    Column("name", "项目名称", "text", ("名称", "工程名称", "project_name", "project"), required=True, max_len=200),
    Column("county", "县区", "text", ("县(市、区)", "县市区", "县(区)", "区县", "县"), required=True, max_len=50),
    Column("category", "类别", "text", ("项目类别", "类型", "type"), max_len=50),
    Column("unit", "责任单位", "text", ("责任部门", "responsible_unit"), max_len=200),
    Column("planned_start", "计划开工", "date", ("计划开工时间", "计划开工日期")),
    Column("planned_finish", "计划完工", "date", ("计划完工时间", "计划完工日期")),
    Column("investment", "总投资(万元)", "money", ("总投资", "计划总投资")),
    Column("status", "状态", "status", ("项目状态", "建设状态")),
    Column("progress", "形象进度(%)", "progress", ("形象进度", "进度")),
    Column("investment_done", "已完成投资(万元)", "money", ("已完成投资", "完成投资", "累计完成投资")),
    Column("actual_start", "实际开工", "date", ("实际开工时间", "实际开工日期")),
    Column("actual_finish", "实际完工", "date", ("实际完工时间", "实际完工日期")),
    Column("notes", "备注", "text", ("note", "remarks")),
)

MILESTONE_COLUMNS: tuple[Column, ...] = (
    Column("code", "项目编号", "text", ("编号", "项目代码", "project_code"), required=True, max_len=MAX_CODE_LENGTH),
    Column("milestone", "节点名称", "text", ("节点", "milestone_name"), required=True, max_len=200),
    Column("due", "计划完成", "date", ("计划完成时间", "计划完成日期", "计划时间")),
    Column("done", "实际完成", "date", ("实际完成时间", "实际完成日期", "完成时间")),
)

LEDGER_BY_KEY = {c.key: c for c in LEDGER_COLUMNS}
MILESTONE_BY_KEY = {c.key: c for c in MILESTONE_COLUMNS}

# Status labels as a person writes them -> the stored code.
STATUS_LABELS = {
    ProjectStatus.NOT_STARTED: "未开工", ProjectStatus.STARTED: "已开工", ProjectStatus.COMPLETED: "已完工",
}
_STATUS_BY_TEXT = {
    **{label: code for code, label in STATUS_LABELS.items()},
    **{code: code for code in STATUS_LABELS},
}

# Sheet names an export writes, by language; a workbook's milestone sheet is found by name.
CITY_SHEET = {"zh": "全市", "en": "City"}
LEDGER_SHEET = {"zh": "台账", "en": "Ledger"}
MILESTONE_SHEET = {"zh": "节点", "en": "milestones"}
NOTES_SHEET = {"zh": "填写说明", "en": "How to fill in"}
_MILESTONE_SHEET_WORDS = {"节点", "milestone", "milestones", "节点表"}

_PARENS = re.compile(r"\([^)]*\)")
_SEPARATORS = re.compile(r"[\s/|,;:]+")


def normalise(text: str) -> str:
    """Full-width to half-width, lower case, single spaces: `总投资（万元） ` -> `总投资(万元)`."""
    return " ".join(unicodedata.normalize("NFKC", text).lower().split())


def _alias_map(columns: tuple[Column, ...]) -> dict[str, str]:
    names: dict[str, str] = {}
    for column in columns:
        for alias in (column.key, column.zh, *column.aliases):
            base = normalise(alias)
            names.setdefault(base, column.key)
            names.setdefault(_PARENS.sub("", base).strip(), column.key)
            names.setdefault(base.replace("_", " "), column.key)
    return names


_LEDGER_NAMES = _alias_map(LEDGER_COLUMNS)
_MILESTONE_NAMES = _alias_map(MILESTONE_COLUMNS)


def match_header(text: object, *, milestones: bool = False) -> str | None:
    """The column key a header cell names, or None for a column Qingshui does not read."""
    if text is None:
        return None
    names = _MILESTONE_NAMES if milestones else _LEDGER_NAMES
    whole = normalise(str(text))
    if not whole:
        return None
    bare = " ".join(_PARENS.sub(" ", whole).split())
    for candidate in (whole, bare, bare.replace(" ", "_")):
        if candidate in names:
            return names[candidate]
    for token in _SEPARATORS.split(bare):  # `项目编号 code`, `项目编号/code`
        if token in names:
            return names[token]
    return None


def parse_status(text: str) -> ProjectStatus | None:
    """未开工/已开工/已完工 or not_started/started/completed -> the code; None if neither."""
    return _STATUS_BY_TEXT.get(normalise(text).replace(" ", "_").replace("-", "_"))


def is_milestone_sheet(name: str) -> bool:
    words = set(_SEPARATORS.split(normalise(name)))
    return bool(words & _MILESTONE_SHEET_WORDS)


def county_key(name: str) -> str:
    """How county names compare: no spaces, half-width (`祁 县` is 祁县)."""
    return "".join(unicodedata.normalize("NFKC", name).split())


def closest_county(name: str, counties: Mapping[str, str]) -> str | None:
    """The known county a mistyped `name` most likely means (`祁` → 祁县), or None when none is close.
    `counties`: county_key(name) -> name. The import and `qingshui invite` both suggest with it."""
    close = difflib.get_close_matches(county_key(name), list(counties), n=1, cutoff=0.5)
    return counties[close[0]] if close else None


# A CSV cell a spreadsheet would run as a formula (OWASP's CSV injection advice): an export writes it
# after an apostrophe, which the import takes off again. Numbers and dates are written as such and
# never need it (a money cell -5 stays -5).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formula(text: str) -> str:
    """`=HYPERLINK(…)` -> `'=HYPERLINK(…)`, for a text cell of a CSV export."""
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


def restore_formula(text: str) -> str:
    """The inverse, for a CSV cell read back: only the apostrophe `neutralise_formula` adds goes."""
    return text[1:] if text.startswith("'") and text[1:].startswith(FORMULA_STARTS) else text
