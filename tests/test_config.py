"""Settings: every one documented in .env.example; a bad one is one line naming it."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from bot.__main__ import main
from bot.config import Settings, SettingsError, load_settings
from bot.domain.lights import LightRules
from bot.domain.problems import EscalationRules

ROOT = Path(__file__).resolve().parent.parent


def test_every_setting_is_documented_in_env_example() -> None:
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    assert {name.upper() for name in Settings.model_fields} == documented


@pytest.mark.parametrize(
    ("name", "value", "named"),
    [
        ("TIMEZONE", "Mars/Olympus", "TIMEZONE"),
        ("REMINDER_DAY", "35", "REMINDER_DAY"),
        ("QUIET_HOURS", "late", "QUIET_HOURS"),
        ("ADMIN_IDS", "12,abc", "ADMIN_IDS"),
        ("DEFAULT_LANGUAGE", "fr", "DEFAULT_LANGUAGE"),
    ],
)
def test_a_malformed_setting_names_itself(monkeypatch: pytest.MonkeyPatch, name: str, value: str, named: str) -> None:
    monkeypatch.chdir(ROOT / "tests")  # no .env here
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert str(err.value).startswith(named)
    assert "\n" not in str(err.value)


def test_admin_ids_are_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADMIN_IDS", "101, 202")
    assert load_settings().admin_ids == (101, 202)


def test_the_cli_prints_one_line_for_a_bad_setting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TIMEZONE", "Nowhere/City")
    assert main(["stats"]) != 0
    err = capsys.readouterr().err.strip()
    assert err.startswith("TIMEZONE") and "\n" not in err


def test_run_without_token_says_what_to_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BOT_TOKEN", raising=False)
    settings = Settings(_env_file=None, data_dir=tmp_path)  # type: ignore[call-arg]
    with pytest.raises(SettingsError) as err:
        settings.require_token()
    assert "BOT_TOKEN" in str(err.value) and "@BotFather" in str(err.value)


@pytest.mark.parametrize(("lang", "word"), [("zh", "运行服务"), ("en", "run the service")])
def test_command_line_help_is_in_the_default_language(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], lang: str, word: str
) -> None:
    monkeypatch.setenv("DEFAULT_LANGUAGE", lang)
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert word in out
    assert all(command in out for command in ("run", "demo", "import", "export", "stats", "invite", "jobs"))


def test_the_yellow_threshold_and_the_escalation_steps_have_one_home(monkeypatch: pytest.MonkeyPatch) -> None:
    """"Where is the yellow threshold?" In Settings: the rules that apply it have no default of their own,
    so a changed setting is what every light and every escalation uses."""
    for rules in (LightRules, EscalationRules):
        assert [f.name for f in dataclasses.fields(rules) if f.default is not dataclasses.MISSING] == []
        with pytest.raises(TypeError):
            rules()  # type: ignore[call-arg]
    monkeypatch.setenv("LIGHT_YELLOW_BEHIND", "15")
    monkeypatch.setenv("ESCALATE_CITY_AFTER", "5")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert LightRules.from_settings(settings).yellow_behind == 15
    assert EscalationRules.from_settings(settings).city_after == 5


def test_env_example_shows_each_default_as_settings_has_it() -> None:
    example = dict(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=(.*)$", (ROOT / ".env.example").read_text(), re.M))
    for name, field in Settings.model_fields.items():
        shown = example[name.upper()].strip()
        if field.default is None or not shown:
            continue  # no default, or an example of a value to set (a URL, a token)
        parsed = Settings(_env_file=None, **{name: shown})  # type: ignore[arg-type]
        assert getattr(parsed, name) == field.default, name
