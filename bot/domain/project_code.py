"""The canonical project code: the one form a project's code is stored in and looked up by.

Whatever a city office types into its workbook and whatever a person types in the chat goes through
`canonical_code` before it is stored or compared, so `/project hc-003`, `/project HC 003`,
`/project ＨＣ－００３` and `HC‏-003` (with an invisible direction mark) all find the project imported as
`HC-003`. The rule, in order (README, "The ledger file"):

1. NFKC: full-width letters, digits and punctuation become their ordinary forms (`ＨＣ－００３` → `HC-003`);
2. invisible characters (Unicode category Cf: zero-width spaces and joiners, LRM/RLM and the other
   direction marks and isolates, BOM, soft hyphen) are removed;
3. every dash (‐ ‑ ‒ – — ― − …) is `-`;
4. spaces at either end are trimmed; a run of spaces inside becomes `-` (`HC 003` → `HC-003`), unless it
   stands next to a `-`, `_` or `.`, where it is simply dropped (`HC - 003` → `HC-003`);
5. upper case (`hc-003` → `HC-003`; Chinese characters have no case and stay as they are).

A valid code is then 1 to `MAX_CODE_LENGTH` characters of letters (Chinese included), digits, `-`, `_`
and `.`, with at least one letter or digit. Other characters (`:`, `/`, `#`, quotes, emoji …) are
refused at import: a code is written into messages, file names and folders, and must mean the same
thing everywhere."""

from __future__ import annotations

import re
import unicodedata

MAX_CODE_LENGTH = 40  # characters; the database column is this long (buttons carry the id, not the code)
CODE_PUNCTUATION = "-_."

# Dashes NFKC leaves as they are (it already turns the full-width and small hyphen-minus into `-`).
_DASHES = re.compile("[\u2010-\u2015\u2212\u2e3a\u2e3b\ufe58\ufe63\uff0d]")
_SPACES = re.compile(r"\s+")


def strip_invisible(text: str) -> str:
    """Without format characters (category Cf), which clients paste invisibly and which split words."""
    return "".join(ch for ch in text if unicodedata.category(ch) != "Cf")


def unify_dashes(text: str) -> str:
    return _DASHES.sub("-", text)


def _join_spaces(match: re.Match[str]) -> str:
    text = match.string
    before = text[match.start() - 1] if match.start() > 0 else ""
    after = text[match.end()] if match.end() < len(text) else ""
    return "" if before in CODE_PUNCTUATION or after in CODE_PUNCTUATION else "-"


def canonical_code(raw: str) -> str:
    """The code as stored and compared (see the module docstring); "" when nothing visible is left."""
    text = strip_invisible(unicodedata.normalize("NFKC", strip_invisible(raw)))
    text = unify_dashes(text).strip()
    text = _SPACES.sub(_join_spaces, text)
    return text.upper()


def _allowed(ch: str) -> bool:
    return ch in CODE_PUNCTUATION or unicodedata.category(ch)[0] in "LMN"


def code_problem(code: str) -> str | None:
    """Why a canonical code cannot be a project's code — "empty", "too_long" or "bad_code_chars" — or None."""
    if not code:
        return "empty"
    if len(code) > MAX_CODE_LENGTH:
        return "too_long"
    if not all(_allowed(ch) for ch in code) or all(ch in CODE_PUNCTUATION for ch in code):
        return "bad_code_chars"
    return None


def bad_code_chars(code: str) -> str:
    """The characters of `code` a code may not hold, each once, for the error message."""
    return "".join(dict.fromkeys(ch for ch in code if not _allowed(ch)))


_NOT_IN_FILE_NAMES = re.compile(r"[^\w-]+")  # \w: letters (Chinese too), digits, `_`; `.` out (no `..`)


def file_safe(text: str) -> str:
    """`text` (a code, a file id) as a file or folder name: letters of any script, digits, `-` and `_` kept,
    anything else (`.`, `/`, `:` of a code stored before codes were checked) replaced by `_`. `祁县-001`
    stays `祁县-001`, so two Chinese codes never share a photo folder."""
    return _NOT_IN_FILE_NAMES.sub("_", text) or "_"
