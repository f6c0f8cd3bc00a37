"""Parse one chat message (text or photo caption) into a project progress report.

Pure functions, no I/O and no user-visible words: the bot renders replies from templates
using the codes and data returned here.

Decisions the templates rely on (see also the ``ProblemCode`` docstrings):

* A bare 完成 / 已完成 ("done", but of what?) is never taken as project completion on its own:
  it yields ``bare_complete_word`` unless an explicit completion word or 100% agrees with it.
* A status word directly after free text in the same clause describes that text, not the project
  ("主体 完工", "管网铺设完成", "testing done"), so it stays in the note.
* ``N% done`` / ``完成80%`` / ``80%完成`` are progress values, not completion.
* A number without % or a progress keyword is never taken as progress: ``bare_number``.
* Inferred values are flagged: ``inferred_status`` (progress > 0 -> started, 100 -> completed) and
  ``inferred_progress`` (completed -> 100).  0% infers nothing; not_started implies no progress value.
* The note comes from the NFKC-normalised text, so full-width punctuation appears in ASCII form.

A number typed on its own, as the answer to one question (the guided report's progress or investment),
is read by ``parse_progress`` and ``parse_amount``: the same normalisation, none of the report grammar.

Over ~400 lines on purpose: one parser, whose private token patterns, scanner and number reading exist
only for parse_report and are read beside it; apart they would be one module's internals in two files.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from enum import StrEnum
from functools import lru_cache
from typing import Any

from bot.domain.project_code import canonical_code, strip_invisible, unify_dashes
from bot.domain.states import ProjectStatus

# short names for the statuses a report can state (bot/domain/states.py)
NOT_STARTED, STARTED, COMPLETED = ProjectStatus.NOT_STARTED, ProjectStatus.STARTED, ProjectStatus.COMPLETED


class ProblemCode(StrEnum):
    """Why a message was not understood; each maps to one template."""

    EMPTY = "empty"  # nothing but (maybe) a code
    NO_CODE = "no_code"  # only when the caller asks for a code (require_code=True)
    SEVERAL_CODES = "several_codes"  # detail: codes
    UNKNOWN_TEXT = "unknown_text"  # nothing recognised; detail: text
    BARE_NUMBER = "bare_number"  # "JZ-017 80": percent? detail: value
    BARE_COMPLETE_WORD = "bare_complete_word"  # 完成 alone: project or something else? detail: word
    PROGRESS_OUT_OF_RANGE = "progress_out_of_range"  # detail: value
    SEVERAL_PROGRESS_VALUES = "several_progress_values"  # detail: values
    CONFLICTING_STATUS = "conflicting_status"  # detail: statuses
    STATUS_CONTRADICTS_PROGRESS = "status_contradicts_progress"  # detail: status, progress
    NO_CHANGE_CONFLICT = "no_change_conflict"  # "no change" plus an update; detail: with


@dataclass(frozen=True)
class ParseProblem:
    code: ProblemCode
    # Excluded from the hash so frozen reports stay hashable despite the dict.
    detail: dict[str, Any] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class ParsedReport:
    code: str | None
    status: ProjectStatus | None
    progress: int | None
    no_change: bool
    milestones: tuple[str, ...]
    note: str
    problems: tuple[ParseProblem, ...]
    inferred_status: bool = False  # status deduced from progress, not said
    inferred_progress: bool = False  # progress 100 deduced from a completion word

    @property
    def understood(self) -> bool:
        has_content = self.status is not None or self.progress is not None or self.no_change or bool(self.milestones)
        return has_content and not self.problems

    @property
    def problem_codes(self) -> tuple[ProblemCode, ...]:
        return tuple(p.code for p in self.problems)


# --- normalisation -----------------------------------------------------------------------------

_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})
_HSPACE = re.compile(r"[^\S\n]+")
_LINEBREAKS = re.compile(r" ?\n[\s]*")


def normalize(text: str) -> str:
    """NFKC, drop invisible format characters, unify dashes/quotes, collapse spaces.

    Line breaks are kept (one per run) because they separate clauses like punctuation does.
    """
    # invisible format characters and dash variants as a project code treats them (bot/domain/project_code.py)
    text = unicodedata.normalize("NFKC", strip_invisible(text))
    text = strip_invisible(text).replace("\r\n", "\n").replace("\r", "\n")
    text = unify_dashes(text).translate(_QUOTES)
    text = _HSPACE.sub(" ", text)
    return _LINEBREAKS.sub("\n", text).strip()


# --- project codes -----------------------------------------------------------------------------

# Hyphenated codes count anywhere; unhyphenated ones (JZ017) only at the start of the message,
# because inside free text "km3" or "Q3" is far more likely than a code.
_CODE = r"(?<![0-9A-Za-z])[A-Za-z]{1,8}-[0-9]{1,6}(?![0-9A-Za-z%])"
_CODE_START = r"\A[A-Za-z]{2,8}[0-9]{1,6}(?![0-9A-Za-z%.])"
_CODE_PARTS = re.compile(r"([A-Za-z]+)-?([0-9]+)")


def _format_code(raw: str) -> str:
    """The canonical code (bot/domain/project_code.py) of a code found in a message; the short form JZ017 gets
    its dash (JZ-017), digits kept as typed (JZ-17 stays JZ-17)."""
    m = _CODE_PARTS.fullmatch(raw)
    assert m is not None
    return canonical_code(f"{m.group(1)}-{m.group(2)}")


def find_codes(text: str) -> list[str]:
    """All distinct project codes in the text, in order of appearance, normalised (JZ-017)."""
    norm = normalize(text)
    found = [m.group(0) for m in re.finditer(f"{_CODE_START}|{_CODE}", norm)]
    return list(dict.fromkeys(_format_code(c) for c in found))


def find_code(text: str) -> str | None:
    """The project code of the message; None when there is none or several (never guess)."""
    codes = find_codes(text)
    return codes[0] if len(codes) == 1 else None


# --- token patterns ----------------------------------------------------------------------------

_HAN = "\u3400-\u9fff"
_NO_HAN_AFTER = f"(?![{_HAN}])"
_NO_LATIN_BEFORE = "(?<![A-Za-z])"
_NO_LATIN_AFTER = "(?![A-Za-z])"
_NUM = r"-?\d+(?:\.\d+)?"
_CN_NUM = "[零〇一二两三四五六七八九十百]+"
_SUBJECT_ZH = r"(?:本项目|该项目|项目|工程)?\s*"

_PROGRESS = "|".join(
    [
        # 进度80 / 形象进度: 80% / 进度已达到80%
        rf"(?:形象|工程|施工|总体|整体|累计|完成|当前|目前|总)?进度(?:已经|已)?(?:为|达到|达|到|是)?\s*:?\s*{_NUM}\s*%?",
        rf"{_NO_LATIN_BEFORE}progress(?:\s+(?:is|of|at|to))?\s*:?\s*{_NUM}\s*(?:%|percent{_NO_LATIN_AFTER}|pct{_NO_LATIN_AFTER})?",
        # 已完成80%: the percentage makes 完成 a progress phrase, not completion
        rf"(?:已经|已)?完成(?:了)?\s*{_NUM}\s*%",
        # 80% / 80 % / 80 percent, optionally "done"/"完成" (80% done means 80%, not completed)
        rf"(?<![0-9A-Za-z.]){_NUM}\s*(?:%|percent{_NO_LATIN_AFTER}|pct{_NO_LATIN_AFTER})"
        rf"(?:\s*(?:(?:已经|已)?完成{_NO_HAN_AFTER}|(?:done|complete|completed|finished){_NO_LATIN_AFTER}))?",
        rf"百分之(?:{_CN_NUM}|\d+(?:\.\d+)?)",
    ]
)

_EN_PREFIX = r"(?:(?:project|work|works|construction|has|have|been|is|was|already|fully|now|officially)\s+)*"
_NOT_STARTED = "|".join(
    [
        rf"{_SUBJECT_ZH}(?:尚未|还未|还没有|还没|暂未|仍未|未|没有|没)(?:正式)?(?:开工|动工|启动)(?:建设)?{_NO_HAN_AFTER}",
        rf"{_NO_LATIN_BEFORE}(?:(?:project|work|works|construction)\s+)?"
        r"(?:not\s+(?:yet\s+)?(?:started|begun)|(?:has|have)\s*n[o']t\s+(?:yet\s+)?(?:been\s+)?started"
        rf"|yet\s+to\s+start)(?:\s+yet)?{_NO_LATIN_AFTER}",
    ]
)
_NO_CHANGE = "|".join(
    [
        r"(?:本月|本周|本期|近期|目前|仍然|仍)?(?:进度)?"
        rf"(?:无变化|没有变化|没变化|无进展|没有进展|没进展|无新进展|暂无进展|暂无变化|与上月相同|同上月|无更新){_NO_HAN_AFTER}",
        rf"{_NO_LATIN_BEFORE}(?:no\s+changes?|unchanged|nothing\s+new|no\s+progress|no\s+update)(?:\s+this\s+(?:month|week))?{_NO_LATIN_AFTER}",
    ]
)
_COMPLETED = "|".join(
    [
        rf"{_SUBJECT_ZH}(?:已经|已|均已)?(?:全部|全面|整体)?(?:完工|竣工|建成)(?:验收)?(?:了|啦)?{_NO_HAN_AFTER}",
        rf"(?:已经|已)?(?:全部|全面)完成(?:了|啦)?{_NO_HAN_AFTER}",
        # with an explicit subject (项目已完成) 完成 is about the project
        rf"(?:本项目|该项目|项目|工程)\s*(?:已经|已)?完成(?:了|啦)?{_NO_HAN_AFTER}",
        rf"{_NO_LATIN_BEFORE}{_EN_PREFIX}(?:completed|complete|finished|done){_NO_LATIN_AFTER}",
    ]
)
_STARTED = "|".join(
    [
        rf"{_SUBJECT_ZH}(?:已经正式|已正式|已经|已|正式)?(?:开工|动工)(?:建设)?(?:中|了|啦)?{_NO_HAN_AFTER}",
        rf"(?:正在施工|施工中|在建){_NO_HAN_AFTER}",
        rf"{_NO_LATIN_BEFORE}{_EN_PREFIX}(?:started|begun|began|under\s+construction|in\s+progress){_NO_LATIN_AFTER}",
    ]
)
_BARE_COMPLETE = rf"(?:已经|已)?完成(?:了|啦)?{_NO_HAN_AFTER}"

# Words that, next to a milestone name, mark it as reached.
_MS_DONE_ZH = r"(?:已经|已)?(?:全部)?(?:完成|完工|竣工|建成)(?:了)?"
_MS_DONE_EN = r"(?:(?:is|are|has\s+been|have\s+been|was|were)\s+)?(?:done|completed|complete|finished|reached)"

# Later-status patterns are tried in this order at the same position; milestones go first so that
# "完成管网铺设" is a milestone before 完成 can be read as a bare word, and progress before
# statuses so that "完成80%" is a percentage.
_STATUS_KINDS: tuple[tuple[str, str], ...] = (
    (NOT_STARTED, _NOT_STARTED),  # a status's group is named by its value: the token's kind is the status
    ("no_change", _NO_CHANGE),
    (COMPLETED, _COMPLETED),
    (STARTED, _STARTED),
    ("bare", _BARE_COMPLETE),
)
_CLAUSE_SEPARATORS = ",;:、。!?.\n"
_NUMBER_ONLY = re.compile(_NUM)


_DONE_SUFFIX = re.compile(r"(?:已经|已)?(?:全部)?(?:完成|完工|竣工|建成)$")


def _name_key(name: str) -> str:
    """The name as matched: without spaces, case-folded, and without a trailing completion word,
    so that a milestone called "入户改造完成" is reached by "入户改造完成" and "入户改造已完成"."""
    key = re.sub(r"\s+", "", normalize(name)).casefold()
    stripped = _DONE_SUFFIX.sub("", key)
    return stripped or key


def _milestone_pattern(key: str) -> str:
    body = r"\s*".join(re.escape(ch) for ch in key)  # spaces inside the name are ignored
    before = _NO_LATIN_BEFORE if key[0].isascii() and key[0].isalpha() else ""
    after = _NO_LATIN_AFTER if key[-1].isascii() and key[-1].isalpha() else ""
    return (
        rf"{before}{body}{after}\s*:?\s*(?:{_MS_DONE_ZH}|{_MS_DONE_EN}{_NO_LATIN_AFTER})"
        rf"|(?:{_MS_DONE_ZH}|{_NO_LATIN_BEFORE}(?:completed|finished|done|reached)\s+)\s*{body}{after}"
    )


def _milestone_keys(names: Iterable[str], norm: str) -> tuple[tuple[str, str], ...]:
    """(key, original name) pairs of the names that `norm` (normalized text) contains, longest first
    so that "管网铺设" wins over "管网". Only those: each project has its own names, and compiling a
    pattern for all of them (~2 ms) on every report that names none was most of the parser's time."""
    compact = "".join(norm.split()).casefold()  # as the patterns match: spaces ignored, any case
    pairs = {}
    for name in names:
        key = _name_key(name)
        if key and key not in pairs and key in compact:
            pairs[key] = name
    return tuple(sorted(pairs.items(), key=lambda kv: -len(kv[0])))


@lru_cache(maxsize=1)
def _scanner() -> re.Pattern[str]:
    """Codes, progress and status words: one pattern for every project (compiling it takes ~70 ms,
    so it must not depend on the project's milestone names; those get their own small pattern)."""
    parts = [f"(?P<code>{_CODE_START}|{_CODE})", f"(?P<progress>{_PROGRESS})"]
    parts.extend(f"(?P<{kind}>{pattern})" for kind, pattern in _STATUS_KINDS)
    return re.compile("|".join(parts), re.IGNORECASE)


def _tokens(norm: str, milestone_keys: tuple[str, ...]) -> Iterator[re.Match[str]]:
    """The tokens of `norm`, left to right, as one alternation of the milestone patterns followed by
    the scanner's would find them: the leftmost match wins, and at the same position a milestone."""
    base = _scanner()
    if not milestone_keys:
        yield from base.finditer(norm)
        return
    named = _milestone_scanner(milestone_keys)
    pos = 0
    while pos <= len(norm):
        ms, other = named.search(norm, pos), base.search(norm, pos)
        m = ms if other is None or (ms is not None and ms.start() <= other.start()) else other
        if m is None:
            return
        yield m
        pos = max(m.end(), m.start() + 1)


@lru_cache(maxsize=256)
def _milestone_scanner(milestone_keys: tuple[str, ...]) -> re.Pattern[str]:
    parts = [f"(?P<ms{i}>{_milestone_pattern(k)})" for i, k in enumerate(milestone_keys)]
    return re.compile("|".join(parts), re.IGNORECASE)


def match_milestones(text: str, milestone_names: Iterable[str]) -> list[str]:
    """Names (as given) that the text reports reached: the name next to a completion word.

    Matching is NFKC, case-insensitive and ignores spaces; order follows the text.
    """
    norm = normalize(text)
    pairs = _milestone_keys(milestone_names, norm)
    if not pairs:
        return []
    scanner = _milestone_scanner(tuple(k for k, _ in pairs))
    found = [pairs[int(m.lastgroup[2:])][1] for m in scanner.finditer(norm) if m.lastgroup]
    return list(dict.fromkeys(found))


# --- numbers -----------------------------------------------------------------------------------

_CN_DIGITS = {ch: i for i, ch in enumerate("零一二三四五六七八九")} | {"〇": 0, "两": 2}


def _cn_number(text: str) -> int:
    if not any(ch in "十百" for ch in text):  # 八五 -> 85, read digit by digit
        return int("".join(str(_CN_DIGITS[ch]) for ch in text))
    total, current = 0, 0
    for ch in text:
        if ch == "十":
            total += (current or 1) * 10
            current = 0
        elif ch == "百":
            total += (current or 1) * 100
            current = 0
        else:
            current = _CN_DIGITS[ch]
    return total + current


def _progress_value(token: str) -> Decimal:
    m = re.search(f"百分之({_CN_NUM})", token)
    if m:
        return Decimal(_cn_number(m.group(1)))
    m = re.search(r"(?<![0-9.])-?\d+(?:\.\d+)?", token)
    assert m is not None
    return Decimal(m.group(0))


def _as_number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


_TYPED_UNITS = ("万元", "万", "percent")
MAX_AMOUNT = Decimal("1e12")  # 万元: far beyond any project; keeps the stored figure a sane size


def _typed_number(text: str) -> Decimal | None:
    """A number typed on its own: full-width digits (８５), thousands commas, a trailing % or unit."""
    cleaned = normalize(text).rstrip("%").replace(",", "")
    for unit in _TYPED_UNITS:
        cleaned = cleaned.removesuffix(unit).strip()
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def parse_progress(text: str) -> int | None:
    """Progress typed as a whole percentage 0–100 ("85", "85%", "８５％", "85.0"); None for anything else
    (a fraction, a number out of range, words)."""
    value = _typed_number(text)
    if value is None or value != value.to_integral_value() or not 0 <= value <= 100:
        return None
    return int(value)


def parse_amount(text: str) -> Decimal | None:
    """An amount of money in 万元 ("860.5", "1,200", "860.5万元", "８６０．５"), to the cent; None when it is
    not a number, negative, or not below MAX_AMOUNT."""
    value = _typed_number(text)
    if value is None or value < 0 or value >= MAX_AMOUNT:
        return None
    return value.quantize(Decimal("0.01"))


# --- note --------------------------------------------------------------------------------------

_SEP_CLASS = "[,;:、。!?\n]"


def _tidy_note(text: str) -> str:
    text = re.sub(r"[^\S\n]+", " ", text)
    text = re.sub(rf"\s+(?={_SEP_CLASS})", "", text)  # no space before punctuation
    text = re.sub(rf"({_SEP_CLASS})(?:\s*{_SEP_CLASS})+", r"\1", text)  # 80%,,note -> one comma
    text = re.sub(rf"({_SEP_CLASS})\s+(?=[{_HAN}])", r"\1", text)
    return text.strip(" \n,;:、。")


# --- the parser --------------------------------------------------------------------------------


def _directly_after_free_text(gap: str) -> bool:
    """True when the gap before a token ends with words of the same clause."""
    last = max(gap.rfind(sep) for sep in _CLAUSE_SEPARATORS)
    return bool(gap[last + 1 :].strip())


def parse_report(
    text: str,
    milestone_names: Iterable[str] | None = None,
    *,
    require_code: bool = False,
) -> ParsedReport:
    """Parse one message.  ``milestone_names``: the project's open milestones, when known.

    ``require_code``: report ``no_code`` when the text has none (a fresh message, not a reply).
    """
    norm = normalize(text)
    pairs = _milestone_keys(milestone_names or (), norm)

    codes: list[str] = []
    values: list[Decimal] = []
    statuses: list[ProjectStatus] = []
    milestones: list[str] = []
    bare_words: list[str] = []
    no_change = False
    note_parts: list[str] = []
    pos = 0
    for m in _tokens(norm, tuple(k for k, _ in pairs)):
        kind = m.lastgroup or ""
        gap = norm[pos : m.start()]
        note_parts.append(gap)
        pos = m.end()
        token = m.group(0)
        if kind.startswith("ms"):
            milestones.append(pairs[int(kind[2:])][1])
        elif kind == "code":
            codes.append(_format_code(token))
        elif kind == "progress":
            values.append(_progress_value(token))
        elif _directly_after_free_text(gap):
            # "管网 完工", "testing done": the word describes that text, keep it in the note.
            note_parts.append(token)
            continue
        elif kind == "no_change":
            no_change = True
        elif kind == "bare":
            bare_words.append(token)
        else:
            statuses.append(ProjectStatus(kind))
        note_parts.append(" ")  # keep words on both sides of a removed token apart
    note_parts.append(norm[pos:])
    note = _tidy_note("".join(note_parts))

    problems: list[ParseProblem] = []

    distinct_codes = list(dict.fromkeys(codes))
    code = distinct_codes[0] if len(distinct_codes) == 1 else None
    if len(distinct_codes) > 1:
        problems.append(ParseProblem(ProblemCode.SEVERAL_CODES, {"codes": distinct_codes}))
    elif require_code and not distinct_codes:
        problems.append(ParseProblem(ProblemCode.NO_CODE, {}))

    progress: int | None = None
    out_of_range = [v for v in values if v < 0 or v > 100]
    for v in out_of_range:
        problems.append(ParseProblem(ProblemCode.PROGRESS_OUT_OF_RANGE, {"value": _as_number(v)}))
    in_range = [v for v in values if 0 <= v <= 100]
    rounded = list(dict.fromkeys(int(v.quantize(Decimal(1), rounding=ROUND_HALF_UP)) for v in in_range))
    if len(rounded) > 1:
        problems.append(ParseProblem(ProblemCode.SEVERAL_PROGRESS_VALUES, {"values": rounded}))
    elif rounded and not out_of_range:
        progress = rounded[0]

    distinct_statuses = list(dict.fromkeys(statuses))
    status: ProjectStatus | None = None
    if len(distinct_statuses) > 1:
        problems.append(ParseProblem(ProblemCode.CONFLICTING_STATUS, {"statuses": distinct_statuses}))
    elif distinct_statuses:
        status = distinct_statuses[0]

    if bare_words:
        # 完成 alone is only safe when something explicit already says "completed".
        if status == COMPLETED or (status is None and progress == 100 and not distinct_statuses):
            status = COMPLETED
        else:
            problems.append(ParseProblem(ProblemCode.BARE_COMPLETE_WORD, {"word": bare_words[0]}))

    contradiction = progress is not None and (
        (status == COMPLETED and progress < 100)
        or (status == NOT_STARTED and progress > 0)
        or (status == STARTED and progress == 100)
    )
    if contradiction:
        problems.append(ParseProblem(ProblemCode.STATUS_CONTRADICTS_PROGRESS, {"status": status, "progress": progress}))

    inferred_status = inferred_progress = False
    if not contradiction and not no_change:
        if status is None and not distinct_statuses and not bare_words and progress:
            status = COMPLETED if progress == 100 else STARTED
            inferred_status = True
        elif status == COMPLETED and progress is None and not values:
            progress = 100
            inferred_progress = True

    if no_change:
        others = [
            name
            for name, present in (
                ("status", bool(distinct_statuses) or bool(bare_words)),
                ("progress", bool(values)),
                ("milestones", bool(milestones)),
            )
            if present
        ]
        if others:
            problems.append(ParseProblem(ProblemCode.NO_CHANGE_CONFLICT, {"with": others}))

    recognised = bool(values or distinct_statuses or bare_words or milestones or no_change)
    if not recognised:
        if not note:
            problems.append(ParseProblem(ProblemCode.EMPTY, {}))
        elif _NUMBER_ONLY.fullmatch(note):
            problems.append(ParseProblem(ProblemCode.BARE_NUMBER, {"value": _as_number(Decimal(note))}))
        else:
            problems.append(ParseProblem(ProblemCode.UNKNOWN_TEXT, {"text": note}))

    return ParsedReport(
        code=code,
        status=status,
        progress=progress,
        no_change=no_change,
        milestones=tuple(dict.fromkeys(milestones)),
        note=note,
        problems=tuple(problems),
        inferred_status=inferred_status,
        inferred_progress=inferred_progress,
    )
