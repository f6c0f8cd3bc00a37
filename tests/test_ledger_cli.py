"""`qingshui import | export | template | stats` as an administrator runs them: exit codes and output."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.__main__ import main
from bot.domain.columns import display_width
from tests.ledger_files import project, write_csv


@pytest.fixture
def cli(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # no stray .env; relative file names land here
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("DEFAULT_LANGUAGE", raising=False)
    return tmp_path


def test_import_the_sample_then_stats_shows_the_programmes_figures(
    cli: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["import", "--sample"]) == 0
    out = capsys.readouterr().out
    assert "新增 44 个、更新 0 个、未变 0 个项目" in out
    assert "新建县区：榆次区、太谷区、祁县" in out

    assert main(["stats"]) == 0
    out = capsys.readouterr().out
    assert "全市共 44 个项目：已完工 28 个，已开工 41 个" in out
    assert "完工率 64%，开工率 93%" in out
    table = [line for line in out.splitlines() if line.endswith("%")]
    assert [line.split()[0] for line in table][:3] == ["榆次区", "太谷区", "祁县"]
    assert table[-1].split() == ["全市", "44", "28", "41", "3", "64%", "93%"]
    # CJK characters take two columns: every row ends at the same terminal column
    assert len({display_width(line) for line in table}) == 1


def test_a_bad_file_names_every_bad_row_and_changes_nothing(cli: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["import", "--sample"]) == 0
    path = write_csv(cli / "update.csv", [
        project("JZ-009", 状态="已完工", 实际完工=None, **{"形象进度(%)": 100}),
        project("JZ-011", **{"形象进度(%)": 120}),
        project("JZ-012", 县区="祈县"),
    ])
    capsys.readouterr()
    assert main(["import", str(path)]) == 1
    err = capsys.readouterr().err
    assert "「update.csv」第 2 行「实际完工」列：状态为已完工，须填写实际完工日期" in err
    assert "「update.csv」第 3 行「形象进度(%)」列：“120” 超出范围" in err
    assert "「update.csv」第 4 行「县区」列：“祈县” 不是已知的县区，是不是“祁县”？" in err
    assert "台账文件有 3 处错误，台账没有任何改动" in err
    assert "Traceback" not in err
    assert main(["stats"]) == 0
    assert "完工率 64%，开工率 93%" in capsys.readouterr().out


@pytest.mark.parametrize(("name", "content", "expected"), [
    ("nowhere.xlsx", None, "找不到文件 nowhere.xlsx"),
    ("ledger.txt", b"a,b", "不支持的文件类型 .txt"),
    ("broken.xlsx", b"not a workbook", "broken.xlsx 已损坏或不是 Excel 工作簿"),
])
def test_an_unreadable_file_is_one_clear_line(
    cli: Path, capsys: pytest.CaptureFixture[str], name: str, content: bytes | None, expected: str
) -> None:
    if content is not None:
        (cli / name).write_bytes(content)
    assert main(["import", name]) == 1
    lines = [line for line in capsys.readouterr().err.splitlines() if "alembic" not in line]
    assert len(lines) == 1 and expected in lines[0]


def test_template_export_and_english(cli: Path, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    assert main(["import"]) == 2
    assert "--sample" in capsys.readouterr().err
    monkeypatch.setenv("DEFAULT_LANGUAGE", "en")
    assert main(["template", "blank.xlsx"]) == 0
    assert "Empty ledger template written: blank.xlsx" in capsys.readouterr().out
    assert main(["import", "blank.xlsx"]) == 0
    assert "no project to import" in capsys.readouterr().out
    assert main(["import", "--sample"]) == 0
    assert "Imported: 44 new, 0 updated, 0 unchanged projects" in capsys.readouterr().out
    assert main(["export", "out/ledger.xlsx"]) == 0
    assert "Exported 44 projects and 55 milestones (the city and 11 county sheets)" in capsys.readouterr().out
    assert main(["import", "out/ledger.xlsx"]) == 0
    assert "0 new, 0 updated, 44 unchanged" in capsys.readouterr().out
