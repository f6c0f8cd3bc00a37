"""A bad setting, as an operator meets it on the command line: one to three lines in DEFAULT_LANGUAGE
naming the setting and what to do, exit code 2, no traceback (unless --debug or LOG_LEVEL=DEBUG).
And argparse's own words (usage, errors, help) in DEFAULT_LANGUAGE too."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.__main__ import main
from bot.config import Settings
from tests.conftest import PG_ADMIN_URL, need_postgres

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0"  # Telegram's shape, not a real bot
PG_SERVER = PG_ADMIN_URL.rsplit("/", 1)[0]
ARGPARSE_ENGLISH = ("usage", "error", "argument", "invalid", "choose from", "required", "unrecognized",
                    "options", "positional", "show this help")


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A clean environment: no .env, none of the settings set, DATA_DIR in the test's folder."""
    monkeypatch.chdir(tmp_path)
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    return tmp_path


def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], lang: str, env: dict[str, str],
        *argv: str) -> tuple[int, str]:
    monkeypatch.setenv("DEFAULT_LANGUAGE", lang)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


# (setting, its value, the command, words of the zh answer, words of the en answer)
CASES = [
    ("BOT_TOKEN", "abc", "run", "格式不对", "malformed"),
    ("BOT_TOKEN", "123456:too-short", "run", "35 个", "35 letters"),
    ("DATABASE_URL", "not a url", "stats", "不是数据库网址", "is not a database URL"),
    ("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test", "stats", "请改用 postgresql+asyncpg://",
     "use postgresql+asyncpg://"),
    ("DATABASE_URL", "sqlite:///x.db", "stats", "请改用 sqlite+aiosqlite://", "use sqlite+aiosqlite://"),
    ("DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:1/test", "stats", "127.0.0.1:1 没有应答",
     "at 127.0.0.1:1 does not answer"),
    ("REDIS_URL", "http://127.0.0.1:6379", "stats", "不是 Redis 网址", "is not a Redis URL"),
    ("REDIS_URL", "redis://127.0.0.1:notaport/0", "stats", "不是 Redis 网址", "is not a Redis URL"),
    ("REDIS_URL", "redis://127.0.0.1:1/0", "run", "127.0.0.1:1 没有应答", "at 127.0.0.1:1 does not answer"),
    ("DIGEST_TIME", "09:00-10:00", "stats", "不是一个时刻", "is not a time of day"),
    ("REMINDER_TIME", "25:00", "jobs list", "不是一个时刻", "is not a time of day"),
    ("QUIET_HOURS", "22:00", "stats", "不是一个时段", "is not a period"),
    ("TIMEZONE", "Mars/Olympus", "stats", "不是已知的时区", "is not a known time zone"),
    ("TELEGRAM_API_URL", "api.telegram.org", "stats", "不是网址", "is not a URL"),
    ("WEBHOOK_URL", "bot.example.org/telegram", "stats", "不是网址", "is not a URL"),
    ("REMINDER_DAY", "abc", "stats", "不是整数", "is not a whole number"),
    ("REMINDER_DAY", "35", "stats", "1 到 28", "from 1 to 28"),
    ("SEND_RATE_GLOBAL", "0", "stats", "大于 0", "above 0"),
    ("LEASE_SECONDS", "1", "stats", "不小于 5", "at least 5"),
    ("LOG_LEVEL", "loud", "stats", "DEBUG、INFO、WARNING、ERROR 之一", "DEBUG, INFO, WARNING, ERROR"),
    ("ADMIN_IDS", "12,abc", "stats", "Telegram 数字 ID", "numeric Telegram ids"),
    ("DEADLINE_DAY", "10", "stats", "不能早于 REMINDER_DAY", "must not be before REMINDER_DAY"),
]


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize(("setting", "value", "command", "zh", "en"), CASES,
                         ids=[f"{c[0]}={c[1]}" for c in CASES])
def test_a_bad_setting_is_told_in_plain_words(
    cli: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    lang: str, setting: str, value: str, command: str, zh: str, en: str,
) -> None:
    env = {setting: value}
    if command == "run" and setting != "BOT_TOKEN":
        env["BOT_TOKEN"] = TOKEN
    code, said = run(monkeypatch, capsys, lang, env, *command.split())
    assert code == 2
    assert "Traceback" not in said
    lines = said.strip().splitlines()
    assert 1 <= len(lines) <= 3, said
    assert setting in lines[0]
    assert (zh if lang == "zh" else en) in said
    quoted = f"「{value}」" if lang == "zh" else f'"{value}"'
    assert said.count(quoted) <= 1 and "got" not in said  # shown once at most, never `got 'abc' (got 'abc')`


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_a_database_that_does_not_exist_is_named(
    cli: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], lang: str
) -> None:
    need_postgres()
    code, said = run(monkeypatch, capsys, lang, {"DATABASE_URL": f"{PG_SERVER}/qingshui_nobody_made_this"}, "stats")
    assert code == 2 and "Traceback" not in said and "DATABASE_URL" in said
    assert ("数据库「qingshui_nobody_made_this」" if lang == "zh" else
            'database "qingshui_nobody_made_this"') in said
    assert ("不存在" if lang == "zh" else "does not exist") in said


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("where", ["a file", "under a file"])
def test_a_data_dir_that_cannot_be_written_is_named(
    cli: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], lang: str, where: str
) -> None:
    blocker = cli / "not-a-folder"
    blocker.write_text("a file, where a folder should be")
    # the tests run as root, who may write into any folder: only a path through a file is unwritable
    data_dir = blocker if where == "a file" else blocker / "data"
    code, said = run(monkeypatch, capsys, lang, {"DATA_DIR": str(data_dir)}, "stats")
    assert code == 2 and "Traceback" not in said
    assert said.startswith("DATA_DIR") and str(data_dir) in said
    assert ("无法写入" if lang == "zh" else "cannot be written") in said


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_a_webhook_without_its_secret_is_named(
    cli: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], lang: str
) -> None:
    code, said = run(monkeypatch, capsys, lang, {"BOT_TOKEN": TOKEN, "WEBHOOK_URL": "https://bot.example.org/t"},
                     "run")
    assert code == 2 and "Traceback" not in said
    assert said.startswith("WEBHOOK_SECRET" if lang == "en" else "设置了 WEBHOOK_URL 就必须设置 WEBHOOK_SECRET")


@pytest.mark.parametrize("ask", ["--debug", "LOG_LEVEL=DEBUG"])
def test_debug_shows_the_traceback_behind_the_plain_words(
    cli: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], ask: str
) -> None:
    env = {"DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1:1/test"}
    argv = ["stats"]
    if ask == "--debug":
        argv.insert(0, "--debug")
    else:
        env["LOG_LEVEL"] = "DEBUG"
    code, said = run(monkeypatch, capsys, "zh", env, *argv)
    assert code == 2
    assert "Traceback" in said and "ConnectionRefusedError" in said
    assert said.strip().splitlines()[-1].startswith("DATABASE_URL")  # the plain words still close it


# --- argparse's words ---------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("argv", "zh", "en"),
    [
        (["bogus"], "无效的选项 'bogus'", "invalid choice: 'bogus'"),
        (["invite", "--role", "x"], "无效的选项 'x'", "invalid choice: 'x'"),
        (["invite"], "缺少必需的参数：--role", "the following arguments are required: --role"),
        (["stats", "--verbose-ish"], "无法识别的参数：--verbose-ish", "unrecognized arguments: --verbose-ish"),
        (["import"], "请给出要导入的文件", "Give the file to import"),
    ],
    ids=["bogus", "invite-role-x", "invite-no-role", "unrecognized", "import-no-file"],
)
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_command_line_mistakes_are_told_in_the_default_language(
    cli: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    lang: str, argv: list[str], zh: str, en: str,
) -> None:
    monkeypatch.setenv("DEFAULT_LANGUAGE", lang)
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    said = capsys.readouterr().err
    assert code == 2
    assert (zh if lang == "zh" else en) in said
    if lang == "zh":
        assert not [word for word in ARGPARSE_ENGLISH if word in said.lower()], said


@pytest.mark.parametrize("argv", [["--help"], ["invite", "--help"], ["jobs", "run", "--help"]])
def test_help_has_no_english_from_argparse_in_chinese(
    cli: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    monkeypatch.setenv("DEFAULT_LANGUAGE", "zh")
    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("用法：qingshui")
    assert "显示本帮助并退出" in out
    assert not [word for word in ARGPARSE_ENGLISH if word in out.lower()], out
