"""Table-driven tests for the one-message report parser."""

from __future__ import annotations

from typing import Any

import pytest

from bot.domain.report_parser import (
    COMPLETED,
    NOT_STARTED,
    STARTED,
    ParsedReport,
    ProblemCode,
    find_code,
    find_codes,
    match_milestones,
    normalize,
    parse_report,
)

MILESTONES = ["管网铺设", "道路恢复", "Pipes laid"]

# (text, expected fields).  Only the listed fields are checked; "problems" is always checked
# (default: none), so every case also asserts what it must NOT report.
CASES: list[tuple[str, dict[str, Any]]] = [
    # --- progress -----------------------------------------------------------------------------
    ("JZ-017 80% 管网铺设完成", {"code": "JZ-017", "progress": 80, "status": STARTED, "note": "管网铺设完成"}),
    ("JZ-017 进度８０％", {"code": "JZ-017", "progress": 80, "note": ""}),
    ("JZ-017 进度80", {"progress": 80}),
    ("JZ-017 形象进度 80%", {"progress": 80, "note": ""}),
    ("JZ-017 形象进度：80%", {"progress": 80, "note": ""}),
    ("JZ-017 80 %", {"progress": 80}),
    ("JZ-017 百分之八十", {"progress": 80}),
    ("JZ-017 百分之八十五", {"progress": 85}),
    ("JZ-017 已完成80%", {"progress": 80, "status": STARTED, "inferred_status": True}),
    ("JZ-017 80.5%", {"progress": 81}),
    ("JZ-017 80.4%", {"progress": 80}),
    ("JZ-017 0%", {"progress": 0, "status": None, "inferred_status": False}),
    ("JZ-017 100%", {"progress": 100, "status": COMPLETED, "inferred_status": True}),
    ("JZ-017 progress 45", {"progress": 45}),
    ("JZ-017 80% pipes laid", {"progress": 80, "note": "pipes laid", "status": STARTED}),
    ("JZ-017 80% done", {"progress": 80, "status": STARTED, "note": ""}),
    # --- full-width / separators / invisible characters ------------------------------------------
    ("JZ-017：80%，管网铺设完成", {"code": "JZ-017", "progress": 80, "note": "管网铺设完成"}),
    ("ＪＺ－０１７　８０％　管网铺设完成", {"code": "JZ-017", "progress": 80, "note": "管网铺设完成"}),
    ("JZ–017 70%", {"code": "JZ-017", "progress": 70}),
    ("J\u200bZ-017 8\u200b0%", {"code": "JZ-017", "progress": 80}),
    ("\u200fJZ-017\u200e 60%\u202b 管网\u200b铺设", {"code": "JZ-017", "progress": 60, "note": "管网铺设"}),
    ("\ufeffJZ-017 完工", {"code": "JZ-017", "status": COMPLETED}),
    # --- code forms ---------------------------------------------------------------------------
    ("jz-017 50%", {"code": "JZ-017", "progress": 50}),
    ("JZ017 50%", {"code": "JZ-017", "progress": 50}),
    ("jz-17 50%", {"code": "JZ-17", "progress": 50}),
    ("进度50% JZ-017", {"code": "JZ-017", "progress": 50}),
    # --- status words -------------------------------------------------------------------------
    ("JZ-017 完工", {"status": COMPLETED, "progress": 100, "inferred_progress": True}),
    ("JZ-017 已完工", {"status": COMPLETED, "progress": 100}),
    ("JZ-017 竣工", {"status": COMPLETED}),
    ("JZ-017 已竣工验收", {"status": COMPLETED}),
    ("JZ-017 全部完成", {"status": COMPLETED}),
    ("JZ-017 项目已完成", {"status": COMPLETED}),
    ("JZ-017 完工 100%", {"status": COMPLETED, "progress": 100, "inferred_progress": False}),
    ("JZ-017 开工", {"status": STARTED, "progress": None, "inferred_status": False}),
    ("JZ-017 已开工", {"status": STARTED}),
    ("JZ-017 开工建设", {"status": STARTED}),
    ("JZ-017 已开工 30%", {"status": STARTED, "progress": 30, "inferred_status": False}),
    ("JZ-017 未开工", {"status": NOT_STARTED, "progress": None}),
    ("JZ-017 尚未开工", {"status": NOT_STARTED}),
    ("JZ-017 未开工 0%", {"status": NOT_STARTED, "progress": 0}),
    ("JZ-017 completed", {"status": COMPLETED, "progress": 100}),
    ("JZ-017 Complete", {"status": COMPLETED}),
    ("JZ-017 finished", {"status": COMPLETED}),
    ("JZ-017 done", {"status": COMPLETED}),
    ("JZ-017 started", {"status": STARTED}),
    ("JZ-017 not started", {"status": NOT_STARTED}),
    ("JZ-017 has not started yet", {"status": NOT_STARTED, "note": ""}),
    ("JZ-017 已开工，管网铺设完成", {"status": STARTED, "note": "管网铺设完成"}),
    # --- no change ----------------------------------------------------------------------------
    ("JZ-017 无变化", {"no_change": True, "status": None, "progress": None}),
    ("JZ-017 本月无变化", {"no_change": True}),
    ("JZ-017 没有变化", {"no_change": True}),
    ("JZ-017 no change", {"no_change": True}),
    ("JZ-017 No changes this month", {"no_change": True, "note": ""}),
    # --- reply form: no code ------------------------------------------------------------------
    ("80% 管网铺设完成", {"code": None, "progress": 80, "note": "管网铺设完成"}),
    ("完工", {"code": None, "status": COMPLETED}),
    ("无变化", {"code": None, "no_change": True}),
    ("80%", {"code": None, "progress": 80}),
    # --- milestones vs completion -------------------------------------------------------------
    ("JZ-017 管网铺设 完成", {"milestones": ("管网铺设",), "status": None, "progress": None, "note": ""}),
    ("JZ-017 管网 铺设已完成", {"milestones": ("管网铺设",), "status": None}),
    ("JZ-017 完成管网铺设，道路恢复完成", {"milestones": ("管网铺设", "道路恢复"), "status": None}),
    ("JZ-017 80% 管网铺设完成", {"milestones": ("管网铺设",), "progress": 80, "note": ""}),
    ("JZ-017 pipes laid done", {"milestones": ("Pipes laid",), "status": None}),
    ("JZ-017 管网铺设完成，已完工", {"milestones": ("管网铺设",), "status": COMPLETED}),
    # --- problems -----------------------------------------------------------------------------
    ("", {"problems": [ProblemCode.EMPTY]}),
    ("\u200b \u3000", {"problems": [ProblemCode.EMPTY]}),
    ("JZ-017", {"code": "JZ-017", "problems": [ProblemCode.EMPTY]}),
    ("JZ-017 今天下雨", {"note": "今天下雨", "problems": [ProblemCode.UNKNOWN_TEXT]}),
    # without the milestone list, "X 完成" is about X: kept as a note, not a project completion
    ("JZ-017 主体 完工", {"status": None, "note": "主体 完工", "problems": [ProblemCode.UNKNOWN_TEXT]}),
    ("JZ-017 testing done", {"status": None, "problems": [ProblemCode.UNKNOWN_TEXT]}),
    ("JZ-017 完成", {"status": None, "problems": [ProblemCode.BARE_COMPLETE_WORD]}),
    ("已完成", {"status": None, "problems": [ProblemCode.BARE_COMPLETE_WORD]}),
    ("JZ-017 完成，开工", {"problems": [ProblemCode.BARE_COMPLETE_WORD]}),
    ("JZ-017 完成，100%", {"status": COMPLETED, "progress": 100, "inferred_status": False}),
    ("JZ-017 完成，已完工", {"status": COMPLETED}),
    ("JZ-017 80", {"progress": None, "problems": [ProblemCode.BARE_NUMBER]}),
    ("JZ-017 120%", {"progress": None, "problems": [ProblemCode.PROGRESS_OUT_OF_RANGE]}),
    ("JZ-017 -5%", {"progress": None, "problems": [ProblemCode.PROGRESS_OUT_OF_RANGE]}),
    ("JZ-017 百分之一百二十", {"problems": [ProblemCode.PROGRESS_OUT_OF_RANGE]}),
    ("JZ-017 80% 90%", {"progress": None, "problems": [ProblemCode.SEVERAL_PROGRESS_VALUES]}),
    ("JZ-017 开工，完工", {"status": None, "problems": [ProblemCode.CONFLICTING_STATUS]}),
    ("JZ-017 完工 60%", {"problems": [ProblemCode.STATUS_CONTRADICTS_PROGRESS], "inferred_progress": False}),
    ("JZ-017 未开工 30%", {"problems": [ProblemCode.STATUS_CONTRADICTS_PROGRESS]}),
    ("JZ-017 completed 60%", {"problems": [ProblemCode.STATUS_CONTRADICTS_PROGRESS]}),
    ("JZ-017 已开工 100%", {"problems": [ProblemCode.STATUS_CONTRADICTS_PROGRESS]}),
    ("JZ-017 无变化 80%", {"problems": [ProblemCode.NO_CHANGE_CONFLICT], "inferred_status": False}),
    ("JZ-017 no change, completed", {"problems": [ProblemCode.NO_CHANGE_CONFLICT]}),
    ("JZ-017 JZ-018 80%", {"code": None, "problems": [ProblemCode.SEVERAL_CODES]}),
    ("JZ-017 80% jz-017", {"code": "JZ-017", "progress": 80}),
]


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[repr(c[0]) for c in CASES])
def test_parse_report(text: str, expected: dict[str, Any]) -> None:
    report = parse_report(text, MILESTONES if "milestones" in expected else None)
    expected = dict(expected)
    problems = expected.pop("problems", [])
    assert list(report.problem_codes) == problems
    for name, value in expected.items():
        assert getattr(report, name) == value, name
    assert report.understood == (not problems)


def test_every_problem_code_is_covered() -> None:
    covered = {code for _, exp in CASES for code in exp.get("problems", [])} | {ProblemCode.NO_CODE}
    assert covered == set(ProblemCode)


def test_no_code_only_when_required() -> None:
    assert parse_report("80%").understood
    report = parse_report("80%", require_code=True)
    assert report.problem_codes == (ProblemCode.NO_CODE,)
    assert report.progress == 80


def test_problem_details() -> None:
    def detail(text: str) -> dict[str, Any]:
        (problem,) = parse_report(text).problems
        return problem.detail

    assert detail("JZ-017 80% 90%") == {"values": [80, 90]}
    assert detail("JZ-017 120%") == {"value": 120}
    assert detail("JZ-017 100.5%") == {"value": 100.5}
    assert detail("JZ-017 完工 60%") == {"status": COMPLETED, "progress": 60}
    assert detail("JZ-017 开工，未开工") == {"statuses": [STARTED, NOT_STARTED]}
    assert detail("JZ-017 JZ-018 80%") == {"codes": ["JZ-017", "JZ-018"]}
    assert detail("JZ-017 无变化 80% 开工") == {"with": ["status", "progress"]}
    assert detail("JZ-017 完成") == {"word": "完成"}
    assert detail("JZ-017 80") == {"value": 80}
    assert detail("JZ-017 今天下雨") == {"text": "今天下雨"}


def test_report_is_frozen_and_hashable() -> None:
    report = parse_report("JZ-017 80% 90%")
    assert isinstance(report, ParsedReport)
    with pytest.raises(AttributeError):
        report.progress = 10  # type: ignore[misc]
    hash(report)


def test_milestone_list_does_not_change_plain_reports() -> None:
    assert parse_report("JZ-017 完工", MILESTONES).status == COMPLETED
    assert parse_report("JZ-017 完成", MILESTONES).problem_codes == (ProblemCode.BARE_COMPLETE_WORD,)
    # an unknown milestone-like phrase stays in the note
    report = parse_report("JZ-017 60% 绿化种植完成", MILESTONES)
    assert report.milestones == ()
    assert report.note == "绿化种植完成"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("管网铺设完成", ["管网铺设"]),
        ("管网铺设 已完成", ["管网铺设"]),
        ("管 网 铺 设完成", ["管网铺设"]),
        ("完成管网铺设", ["管网铺设"]),
        ("已完成管网铺设和道路恢复", ["管网铺设"]),
        ("道路恢复完工，管网铺设完成", ["道路恢复", "管网铺设"]),
        ("ＰＩＰＥＳ ＬＡＩＤ done", ["Pipes laid"]),
        ("pipes laid: completed", ["Pipes laid"]),
        ("reached pipes laid", ["Pipes laid"]),
        ("pipes laid finished, pipes laid done", ["Pipes laid"]),
        ("管网铺设中", []),
        ("管网铺设 80%", []),
        ("pipeslaid done", ["Pipes laid"]),
        ("", []),
    ],
)
def test_match_milestones(text: str, expected: list[str]) -> None:
    assert match_milestones(text, MILESTONES) == expected


def test_match_milestones_prefers_longest_name() -> None:
    assert match_milestones("管网铺设完成", ["管网", "管网铺设"]) == ["管网铺设"]
    assert match_milestones("管网完成", ["管网", "管网铺设"]) == ["管网"]
    assert match_milestones("管网完成", ["", "  "]) == []


def test_normalize() -> None:
    assert normalize("ＪＺ－０１７\u3000\u3000８０％，完成") == "JZ-017 80%,完成"
    assert normalize("a\u200b\u200e\u202eb  –  c\u2014d") == "ab - c-d"
    assert normalize("  line one \r\n\r\n  line two ") == "line one\nline two"


def test_find_code() -> None:
    assert find_code("进度 80% ｊｚ－017") == "JZ-017"
    assert find_code("jz017 80%") == "JZ-017"
    assert find_code("80% km3") is None  # no hyphen and not at the start: not a code
    assert find_code("JZ-017 JZ-018") is None  # ambiguous
    assert find_codes("JZ-017 JZ-018 jz-017") == ["JZ-017", "JZ-018"]
    assert find_code("没有编号") is None


@pytest.mark.parametrize(
    "text",
    ["JZ-008 76% 支管及入户改造完成", "JZ-008 支管及入户改造已完成", "JZ-008 支管及入户改造 完成"],
)
def test_milestone_named_with_a_completion_word_is_reached(text: str) -> None:
    names = ["支管及入户改造完成", "主管网铺设"]
    assert match_milestones(text, names) == ["支管及入户改造完成"]
    assert parse_report(text, names).milestones == ("支管及入户改造完成",)


def test_milestone_names_written_differently_from_the_ledger_are_found() -> None:
    # the ledger's spacing, width and case need not be the contact's: names are matched as normalized
    names = ["泵站 建设", "ＰＵＭＰ Station", "道路恢复"]
    text = "JZ-017 泵站建设完成，pump  station done"
    assert match_milestones(text, names) == ["泵站 建设", "ＰＵＭＰ Station"]
    assert parse_report(text, names).milestones == ("泵站 建设", "ＰＵＭＰ Station")
    assert parse_report("JZ-017 80%", names).milestones == ()
