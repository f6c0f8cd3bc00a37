"""The command line's parser speaking DEFAULT_LANGUAGE, argparse's own words included.

argparse looks each of its texts up through `gettext` at the moment it needs it (usage line, error
line, --help headings, "invalid choice", "the following arguments are required" …). `Parser` swaps
in a lookup that reads templates/<lang>/cli_argparse.txt while it builds and parses, and puts
gettext back afterwards; a text argparse adds in a later Python version stays English until it gets
a macro there."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator, Sequence
from typing import Any, NoReturn

from bot.texts import render

# argparse's message id -> macro of cli_argparse.txt (the developer-facing ones are left out)
_MACROS = {
    "usage: ": "usage",
    "argument %(argument_name)s: %(message)s": "argument",
    "%(prog)s: error: %(message)s\n": "error",
    "positional arguments": "positionals",
    "options": "options",
    "show this help message and exit": "help",
    "unrecognized arguments: %s": "unrecognized",
    "the following arguments are required: %s": "required",
    "one of the arguments %s is required": "one_of_required",
    "not allowed with argument %s": "not_allowed_with",
    "ignored explicit argument %r": "ignored_explicit",
    "expected one argument": "expected_one",
    "expected at most one argument": "expected_at_most_one",
    "expected at least one argument": "expected_at_least_one",
    "ambiguous option: %(option)s could match %(matches)s": "ambiguous",
    "unexpected option string: %s": "unexpected_option",
    "invalid %(type)s value: %(value)r": "invalid_value",
    "invalid choice: %(value)r (choose from %(choices)s)": "invalid_choice",
    "unknown parser %(parser_name)r (choices: %(choices)s)": "unknown_parser",
    "can't open '%(filename)s': %(error)s": "cant_open",
}


@contextlib.contextmanager
def argparse_speaks(lang: str) -> Iterator[None]:
    """argparse's texts in `lang` for the duration (the command line runs one parse at a time)."""

    def gettext(message: str) -> str:
        macro = _MACROS.get(message)
        if macro is None:
            return message
        text = render(lang, f"cli_argparse.{macro}")
        return text + "\n" if message.endswith("\n") else text

    def ngettext(singular: str, plural: str, n: int) -> str:
        if singular == "expected %s argument":
            return render(lang, "cli_argparse.expected_n", n=n)
        return singular if n == 1 else plural

    saved = argparse._, argparse.ngettext  # type: ignore[attr-defined]
    argparse._, argparse.ngettext = gettext, ngettext  # type: ignore[attr-defined]
    try:
        yield
    finally:
        argparse._, argparse.ngettext = saved  # type: ignore[attr-defined]


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose own words (usage, errors, help headings) are in `lang`; its sub-command
    parsers inherit the language."""

    def __init__(self, *args: Any, lang: str = "zh", **kwargs: Any) -> None:
        self.lang = lang
        with argparse_speaks(lang):
            super().__init__(*args, **kwargs)

    def add_subparsers(self, **kwargs: Any) -> Any:
        kwargs.setdefault("parser_class", _parser_class(self.lang))
        return super().add_subparsers(**kwargs)

    def parse_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> Any:  # type: ignore[override]
        with argparse_speaks(self.lang):
            return super().parse_args(args, namespace)

    def format_help(self) -> str:
        with argparse_speaks(self.lang):
            return super().format_help()

    def format_usage(self) -> str:
        with argparse_speaks(self.lang):
            return super().format_usage()

    def error(self, message: str) -> NoReturn:
        with argparse_speaks(self.lang):
            super().error(message)


def _parser_class(lang: str) -> type[Parser]:
    class SubParser(Parser):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("lang", lang)
            super().__init__(*args, **kwargs)

    return SubParser
