"""A number typed as the answer to one question of the guided report (bot/domain/report_parser.py
`parse_progress`, `parse_amount`): taken as people write it on a phone, refused when it is not one."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bot.domain.report_parser import MAX_AMOUNT, parse_amount, parse_progress


@pytest.mark.parametrize(("typed", "progress"), [
    ("85", 85), ("85%", 85), ("８５％", 85), ("８５", 85), (" 85 % ", 85), ("85.0", 85), ("0", 0), ("100", 100),
    ("100%", 100), ("80 percent", 80), ("0%", 0),
])
def test_progress_typed_the_usual_ways_is_taken(typed: str, progress: int) -> None:
    assert parse_progress(typed) == progress


@pytest.mark.parametrize("typed", [
    "85.5", "101", "-1", "-0.5", "八十五", "eighty", "", "   ", "%", "85 90", "NaN", "Infinity", "8 5",
])
def test_progress_that_is_not_a_whole_percentage_is_refused(typed: str) -> None:
    assert parse_progress(typed) is None


@pytest.mark.parametrize(("typed", "amount"), [
    ("860.5", Decimal("860.50")), ("８６０．５", Decimal("860.50")), ("860.5万元", Decimal("860.50")),
    ("860.5 万", Decimal("860.50")), ("1,200", Decimal("1200.00")), ("１，２００万元", Decimal("1200.00")),
    ("0", Decimal("0.00")), ("0.004", Decimal("0.00")), ("12.346", Decimal("12.35")),
    ("999999999999.99", Decimal("999999999999.99")),
])
def test_an_amount_in_wan_yuan_is_taken_to_the_cent(typed: str, amount: Decimal) -> None:
    parsed = parse_amount(typed)
    assert parsed == amount and parsed is not None and parsed.as_tuple().exponent == -2


@pytest.mark.parametrize("typed", ["很多", "-3", "-0.01", "", "万元", "NaN", "Infinity", "1e12", str(MAX_AMOUNT)])
def test_an_amount_that_is_not_money_is_refused(typed: str) -> None:
    assert parse_amount(typed) is None


def test_invisible_characters_pasted_with_a_number_do_not_hide_it() -> None:
    # a zero-width space copied from a chat, as the report parser reads any message
    assert parse_progress("8\u200b5%") == 85
    assert parse_amount("860.5\u200b") == Decimal("860.50")
