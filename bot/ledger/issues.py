"""What is wrong with a ledger file, as data: where (sheet, row, column, value) and why (a code).

The words come from templates (`cli_ledger.issue`), so a command line and a chat can each say it
in the reader's language."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.texts import render


@dataclass(frozen=True)
class Issue:
    """One problem. `row` is the row number the user sees in the spreadsheet (header = its own row)."""

    code: str
    sheet: str | None = None
    row: int | None = None
    column: str | None = None  # the header as the file spells it (or the standard header if missing)
    value: str | None = None
    detail: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


class LedgerRejected(Exception):
    """The file cannot be imported; nothing was changed. Every issue found is listed."""

    def __init__(self, issues: Sequence[Issue], warnings: Sequence[Issue] = ()) -> None:
        super().__init__(f"{len(issues)} problem(s) in the ledger file")
        self.issues = list(issues)
        self.warnings = list(warnings)


def describe(issue: Issue, lang: str | None = "zh") -> str:
    """One line: where, what was found, what is wrong."""
    return render(
        lang,
        "cli_ledger.issue",
        code=issue.code,
        sheet=issue.sheet,
        row=issue.row,
        column=issue.column,
        value=issue.value,
        d=issue.detail,
    )


def shown(value: object) -> str:
    """A cell's value as the user typed it, for messages."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if hasattr(value, "isoformat"):
        text = value.isoformat()
        return text.removesuffix("T00:00:00")
    return str(value)
