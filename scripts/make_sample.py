"""Write bot/sample/ledger.xlsx, the sample ledger of Jinzhong's "一泓清水入黄河" programme.

The shipped workbook is the source of truth (loaded by `qingshui import --sample` through the same
import as any user's file); this script is how it was made, kept so it can be made again:

    .venv/bin/python scripts/make_sample.py

44 projects in the 11 counties, 28 completed and 41 started (完工率 64 %, 开工率 93 %), facts as of
2026-10-31. Progress is set against the time-based plan on 2026-11-20 so that, on that day, a few
projects show yellow and a few red (the script prints each light to check)."""

from __future__ import annotations

import datetime as dt
import sys
from collections import Counter
from decimal import Decimal
from pathlib import Path

from bot.config import Settings
from bot.domain.lights import LightRules, MilestoneState, ProjectState, assess, expected_progress
from bot.ledger.export import MILESTONE_EXPORT_COLUMNS, Sheet, write_xlsx
from bot.ledger.format import CITY_SHEET, LEDGER_COLUMNS, MILESTONE_SHEET, STATUS_LABELS

AS_OF = dt.date(2026, 10, 31)  # nothing actual in the file is later than this
LIGHTS_ON = dt.date(2026, 11, 20)
OUT = Path(__file__).resolve().parent.parent / "bot" / "sample" / "ledger.xlsx"
D = dt.date.fromisoformat

# How far behind the plan on LIGHTS_ON an unfinished project is, in percentage points.
ON_PLAN, YELLOW, RED = 2, 18, 40

MILESTONES = {
    "雨污分流改造": ("管网测绘与设计批复", "主干管网铺设完成", "支管及入户改造完成", "竣工验收"),
    "污水处理厂提标": ("施工招标完成", "土建工程完成", "设备安装调试完成", "出水稳定达标验收"),
    "生态修复": ("河道清淤完成", "护岸工程完成", "湿地及绿化种植完成", "竣工验收"),
    "工业废水深度处理": ("工艺设计批复", "设备采购到位", "调试运行", "环保验收"),
    "面源污染治理": ("实施方案批复", "治理设施建设完成", "竣工验收"),
    "农村生活污水治理": ("设计批复", "管网及处理设施建设完成", "竣工验收"),
}
FRACTIONS = {2: (0.5, 1.0), 3: (0.2, 0.6, 1.0), 4: (0.15, 0.45, 0.75, 1.0)}

# code, county, name, category, unit, status, planned start, planned finish, investment (万元), lag / note
PROJECTS: list[tuple[str, str, str, str, str, str, str, str, int, int | str]] = [
    ("JZ-001", "榆次区", "榆次区城区雨污分流改造工程(一期)", "雨污分流改造", "榆次区住建局", "C",
     "2024-03-01", "2025-06-30", 18600, "已通过竣工验收"),
    ("JZ-002", "榆次区", "榆次区潇河入河排污口规范化整治工程", "入河排污口整治", "晋中市生态环境局榆次分局", "C",
     "2024-04-01", "2024-12-31", 1250, ""),
    ("JZ-003", "榆次区", "榆次区第二污水处理厂提标改造工程", "污水处理厂提标", "榆次区住建局", "S",
     "2025-09-01", "2027-06-30", 26400, ON_PLAN),
    ("JZ-004", "榆次区", "榆次区涂河流域生态修复工程", "生态修复", "榆次区水利局", "S",
     "2025-04-01", "2026-12-31", 9800, YELLOW),
    ("JZ-005", "太谷区", "太谷区乌马河生态修复工程", "生态修复", "太谷区水利局", "C",
     "2024-05-01", "2025-10-31", 7600, ""),
    ("JZ-006", "太谷区", "太谷区工业园区废水深度处理工程", "工业废水深度处理", "太谷区工信局", "C",
     "2024-03-15", "2025-08-31", 5400, ""),
    ("JZ-007", "太谷区", "太谷区象峪河入河排污口整治工程", "入河排污口整治", "晋中市生态环境局太谷分局", "C",
     "2024-06-01", "2025-03-31", 860, ""),
    ("JZ-008", "太谷区", "太谷区老城区雨污分流改造工程", "雨污分流改造", "太谷区住建局", "S",
     "2025-06-01", "2027-05-31", 14200, ON_PLAN),
    ("JZ-009", "祁县", "祁县昌源河生态修复工程", "生态修复", "祁县水利局", "C",
     "2024-04-01", "2026-06-30", 11300, "已通过竣工验收"),
    ("JZ-010", "祁县", "祁县污水处理厂提标改造工程", "污水处理厂提标", "祁县住建局", "C",
     "2024-07-01", "2025-09-30", 6900, ""),
    ("JZ-011", "祁县", "祁县城区雨污分流改造工程", "雨污分流改造", "祁县住建局", "S",
     "2025-03-01", "2026-12-31", 8700, RED),
    ("JZ-012", "祁县", "祁县农业面源污染治理工程", "面源污染治理", "祁县农业农村局", "S",
     "2025-10-01", "2027-09-30", 3200, ON_PLAN),
    ("JZ-013", "平遥县", "平遥县惠济河综合治理与生态修复工程", "生态修复", "平遥县水利局", "C",
     "2024-03-01", "2025-12-31", 15800, ""),
    ("JZ-014", "平遥县", "平遥县污水处理厂提标改造工程", "污水处理厂提标", "平遥县住建局", "C",
     "2024-05-01", "2025-04-30", 7200, ""),
    ("JZ-015", "平遥县", "平遥县古城区雨污分流改造工程", "雨污分流改造", "平遥县住建局", "C",
     "2024-04-01", "2026-08-31", 12600, "已通过竣工验收"),
    ("JZ-016", "平遥县", "平遥县工业园区污水深度处理工程", "工业废水深度处理", "平遥县工信局", "S",
     "2025-07-01", "2027-06-30", 6300, ON_PLAN),
    ("JZ-017", "介休市", "介休市第二污水处理厂提标改造", "污水处理厂提标", "介休市住建局", "C",
     "2024-03-01", "2025-06-30", 9800, ""),
    ("JZ-018", "介休市", "介休市汾河介休段入河排污口整治工程", "入河排污口整治", "晋中市生态环境局介休分局", "C",
     "2024-05-01", "2024-12-31", 1480, ""),
    ("JZ-019", "介休市", "介休市焦化企业废水深度处理工程", "工业废水深度处理", "介休市工信局", "S",
     "2025-05-01", "2026-12-31", 21500, ON_PLAN),
    ("JZ-020", "介休市", "介休市龙凤河生态修复工程", "生态修复", "介休市水利局", "N",
     "2027-03-01", "2027-12-31", 6100, "前期手续办理中"),
    ("JZ-021", "灵石县", "灵石县汾河灵石段生态修复工程", "生态修复", "灵石县水利局", "C",
     "2024-04-01", "2025-11-30", 13400, ""),
    ("JZ-022", "灵石县", "灵石县静升河入河排污口整治工程", "入河排污口整治", "晋中市生态环境局灵石分局", "C",
     "2024-06-01", "2025-02-28", 920, ""),
    ("JZ-023", "灵石县", "灵石县煤化工企业废水深度处理工程", "工业废水深度处理", "灵石县工信局", "C",
     "2024-08-01", "2026-05-31", 17800, ""),
    ("JZ-024", "灵石县", "灵石县城区雨污分流改造工程", "雨污分流改造", "灵石县住建局", "S",
     "2025-04-01", "2027-03-31", 8400, ON_PLAN),
    ("JZ-025", "寿阳县", "寿阳县污水处理厂提标改造工程", "污水处理厂提标", "寿阳县住建局", "C",
     "2024-03-01", "2025-05-31", 5600, ""),
    ("JZ-026", "寿阳县", "寿阳县白马河生态修复工程", "生态修复", "寿阳县水利局", "C",
     "2024-05-01", "2025-12-31", 6800, ""),
    ("JZ-027", "寿阳县", "寿阳县农村生活污水治理工程", "农村生活污水治理", "晋中市生态环境局寿阳分局", "S",
     "2025-03-01", "2026-12-31", 4200, YELLOW),
    ("JZ-028", "寿阳县", "寿阳县城区雨污分流改造工程", "雨污分流改造", "寿阳县住建局", "S",
     "2025-08-01", "2027-07-31", 7900, ON_PLAN),
    ("JZ-029", "昔阳县", "昔阳县松溪河生态修复工程", "生态修复", "昔阳县水利局", "C",
     "2024-04-01", "2025-10-31", 8900, ""),
    ("JZ-030", "昔阳县", "昔阳县污水处理厂提标改造工程", "污水处理厂提标", "昔阳县住建局", "C",
     "2024-06-01", "2025-06-30", 4700, ""),
    ("JZ-031", "昔阳县", "昔阳县入河排污口整治工程", "入河排污口整治", "晋中市生态环境局昔阳分局", "C",
     "2024-07-01", "2025-01-31", 650, ""),
    ("JZ-032", "昔阳县", "昔阳县畜禽养殖面源污染治理工程", "面源污染治理", "昔阳县农业农村局", "N",
     "2026-11-01", "2027-10-31", 2600, "施工招标已挂网"),
    ("JZ-033", "和顺县", "和顺县清漳河东源生态修复工程", "生态修复", "和顺县水利局", "C",
     "2024-05-01", "2026-04-30", 7300, ""),
    ("JZ-034", "和顺县", "和顺县污水处理厂提标改造工程", "污水处理厂提标", "和顺县住建局", "C",
     "2024-04-01", "2025-03-31", 3900, ""),
    ("JZ-035", "和顺县", "和顺县入河排污口整治工程", "入河排污口整治", "晋中市生态环境局和顺分局", "C",
     "2024-08-01", "2025-04-30", 580, ""),
    ("JZ-036", "和顺县", "和顺县城区雨污分流改造工程", "雨污分流改造", "和顺县住建局", "S",
     "2025-05-01", "2026-10-31", 5200, 8),
    ("JZ-037", "左权县", "左权县清漳河生态修复工程", "生态修复", "左权县水利局", "C",
     "2024-03-01", "2025-09-30", 9600, ""),
    ("JZ-038", "左权县", "左权县污水处理厂提标改造工程", "污水处理厂提标", "左权县住建局", "C",
     "2024-05-01", "2025-05-31", 4100, ""),
    ("JZ-039", "左权县", "左权县农业面源污染治理工程", "面源污染治理", "左权县农业农村局", "C",
     "2024-06-01", "2026-03-31", 2300, ""),
    ("JZ-040", "左权县", "左权县城区雨污分流改造工程", "雨污分流改造", "左权县住建局", "S",
     "2025-06-01", "2027-05-31", 6600, ON_PLAN),
    ("JZ-041", "榆社县", "榆社县浊漳河北源生态修复工程", "生态修复", "榆社县水利局", "C",
     "2024-04-01", "2025-12-31", 8200, ""),
    ("JZ-042", "榆社县", "榆社县污水处理厂提标改造工程", "污水处理厂提标", "榆社县住建局", "C",
     "2024-05-01", "2025-04-30", 3600, ""),
    ("JZ-043", "榆社县", "榆社县城区雨污分流改造工程", "雨污分流改造", "榆社县住建局", "S",
     "2025-07-01", "2027-06-30", 5800, ON_PLAN),
    ("JZ-044", "榆社县", "榆社县工业园区废水深度处理工程", "工业废水深度处理", "榆社县工信局", "N",
     "2026-07-01", "2027-09-30", 3400, "资金未落实,尚未开工"),
]

# Milestones that are late on purpose: (code, milestone) -> its due date, not reached.
LATE = {
    ("JZ-012", "治理设施建设完成"): D("2026-11-05"),  # 15 days late on 2026-11-20: yellow
    ("JZ-019", "调试运行"): D("2026-09-30"),  # 51 days late: red
}
NOTES = {"JZ-004": "汛期停工两个月,进度滞后", "JZ-011": "老城区管线复杂,拆迁未完成", "JZ-019": "调试推迟,设备到货延误",
         "JZ-027": "部分村庄管网设计变更", "JZ-036": "已超计划工期,剩余入户改造收尾中"}
STATUS = {"C": "completed", "S": "started", "N": "not_started"}


def _milestones(code: str, category: str, start: dt.date, finish: dt.date, status: str) -> list[list[object]]:
    names = MILESTONES[category]
    count = 2 if status == "not_started" else min(len(names), 3 if category == "生态修复" else 4)
    chosen = (*names[: count - 1], names[-1])
    span = (finish - start).days
    rows = []
    for name, fraction in zip(chosen, FRACTIONS[count], strict=True):
        due = LATE.get((code, name), start + dt.timedelta(days=round(span * fraction)))
        reached = due <= AS_OF and (code, name) not in LATE
        rows.append([code, name, due, due - dt.timedelta(days=4) if reached else None])
    return rows


def build() -> tuple[list[list[object]], list[list[object]]]:
    ledger: list[list[object]] = []
    milestones: list[list[object]] = []
    for code, county, name, category, unit, flag, ps, pf, inv, extra in PROJECTS:
        status, start, finish, investment = STATUS[flag], D(ps), D(pf), Decimal(inv)
        note = extra if isinstance(extra, str) else NOTES.get(code, "")
        actual_start = actual_finish = None
        if status == "completed":
            progress, done = 100, investment
            actual_start = start + dt.timedelta(days=int(code[-2:]) % 12)
            actual_finish = min(finish - dt.timedelta(days=int(code[-2:]) % 20), AS_OF)
        elif status == "started":
            assert isinstance(extra, int)
            expected = expected_progress(start, finish, LIGHTS_ON) or 0
            progress = max(5, min(95, expected - extra))
            done = (investment * progress / 100).quantize(Decimal(10))
            actual_start = start + dt.timedelta(days=int(code[-2:]) % 15)
        else:
            progress, done = 0, None
        row = {"code": code, "name": name, "county": county, "category": category, "unit": unit,
               "planned_start": start, "planned_finish": finish, "investment": investment,
               "status": STATUS_LABELS[status], "progress": progress, "investment_done": done,
               "actual_start": actual_start, "actual_finish": actual_finish, "notes": note}
        ledger.append([row[c.key] for c in LEDGER_COLUMNS])
        if status != "completed":
            for ms in _milestones(code, category, start, finish, status):
                milestones.append([ms[0], name, *ms[1:]])
    return ledger, milestones


def check(ledger: list[list[object]], milestones: list[list[object]]) -> Counter[str]:
    keys = [c.key for c in LEDGER_COLUMNS]
    lights: Counter[str] = Counter()
    for values in ledger:
        row = dict(zip(keys, values, strict=True))
        status = next(k for k, v in STATUS_LABELS.items() if v == row["status"])
        ms = tuple(MilestoneState(m[2], m[3], m[4]) for m in milestones if m[0] == row["code"])  # type: ignore[arg-type]
        state = ProjectState(status, row["progress"], row["planned_start"], row["planned_finish"], ms)  # type: ignore[arg-type]
        result = assess(state, LIGHTS_ON, LightRules.from_settings(Settings(_env_file=None)))  # the defaults
        lights[str(result.light)] += 1
        if result.light != "green":
            print(row["code"], row["name"], result.light, [r.code for r in result.reasons], file=sys.stderr)
    return lights


def main() -> None:
    ledger, milestones = build()
    status_at = [c.key for c in LEDGER_COLUMNS].index("status")
    statuses = Counter(row[status_at] for row in ledger)
    assert len(ledger) == 44 and statuses["已完工"] == 28 and statuses["未开工"] == 3, statuses
    print("lights on", LIGHTS_ON, dict(check(ledger, milestones)), file=sys.stderr)
    sheets = [Sheet(CITY_SHEET["zh"], LEDGER_COLUMNS, ledger),
              Sheet(MILESTONE_SHEET["zh"], MILESTONE_EXPORT_COLUMNS, milestones)]
    write_xlsx(OUT, sheets)
    print(f"wrote {OUT} ({len(ledger)} projects, {len(milestones)} milestones)", file=sys.stderr)


if __name__ == "__main__":
    main()
