"""Cedar source text: statements, their lines, and where a parse error is.

Cedar's parser reports *what* is wrong (``unexpected token `}```) but not
*where*. A ``.cedar`` file is a sequence of statements each ending at a ``;``
outside strings and comments, so each statement can be parsed alone to find
the failing one; inside it, growing prefixes are parsed line by line: while the
error is ``unexpected end of input`` the problem lies further on, and the first
prefix that fails otherwise ends on the offending line. Errors Cedar raises only
once a statement is complete (an unknown method, an invalid effect) name a
token, which is then looked up in the statement's code.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

END_OF_INPUT = "unexpected end of input"
_SYNTAX_PREFIXES = ("unexpected token", "invalid token", END_OF_INPUT)
_BACKTICKED = re.compile(r"`([^`]+)`")
_AFTER_COLON = re.compile(r":\s*(\S+)\s*$")
_LONG_NUMBER = re.compile(r"\d{19,}")


@dataclass(frozen=True)
class Statement:
    """One ``;``-terminated statement of a source file."""

    text: str
    """From its first token through its ``;`` (or the end of the file)."""
    line: int
    """1-based line of its first token."""
    masked: str
    """``text`` with string contents and comments blanked, same length and lines."""
    terminated: bool
    """False when the file ends before the statement's ``;``."""

    @property
    def lines(self) -> list[str]:
        return self.text.split("\n")


def mask(text: str) -> str:
    """``text`` with the contents of string literals and ``//`` comments replaced by spaces.

    Newlines are kept, so offsets and line numbers are the same in both.
    """
    return "".join(_masked_chars(text))


def _masked_chars(text: str) -> Iterator[str]:
    in_string = in_comment = escaped = False
    for index, char in enumerate(text):
        if char == "\n":
            in_comment = False
            yield char
        elif in_comment:
            yield " "
        elif in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
                yield char
                continue
            yield " "
        elif char == '"':
            in_string = True
            yield char
        elif char == "/" and text.startswith("//", index):
            in_comment = True
            yield " "
        else:
            yield char


def split_statements(text: str) -> list[Statement]:
    """Split Cedar source into statements at each ``;`` outside strings and comments."""
    masked = mask(text)
    statements: list[Statement] = []
    start: int | None = None
    for index, char in enumerate(masked):
        if start is None:
            if not char.isspace():
                start = index
            else:
                continue
        if char == ";":
            statements.append(_statement(text, masked, start, index + 1, terminated=True))
            start = None
    if start is not None:
        end = len(masked.rstrip())
        statements.append(_statement(text, masked, start, end, terminated=False))
    return statements


def _statement(text: str, masked: str, start: int, end: int, *, terminated: bool) -> Statement:
    return Statement(
        text=text[start:end],
        line=text.count("\n", 0, start) + 1,
        masked=masked[start:end],
        terminated=terminated,
    )


def is_syntax_error(message: str) -> bool:
    """True for errors of the grammar itself, as opposed to errors in what was written."""
    return message.startswith(_SYNTAX_PREFIXES)


def locate_error(
    text: str,
    masked: str,
    error: str,
    parse: Callable[[str], str | None],
    *,
    syntax: Callable[[str], bool] = is_syntax_error,
) -> int | None:
    """The 1-based line within ``text`` where ``error`` (from parsing ``text``) lies.

    ``parse`` returns the error message for a piece of text, or ``None`` if it parses.
    ``syntax`` tells grammar errors (found by parsing prefixes) from others (found by
    looking up the token the message names). ``None`` when neither finds the line.
    """
    lines = text.split("\n")
    if syntax(error) and END_OF_INPUT not in error:
        for count in range(1, len(lines) + 1):
            prefix_error = parse("\n".join(lines[:count]))
            if (
                prefix_error is not None
                and syntax(prefix_error)
                and END_OF_INPUT not in prefix_error
            ):
                return count
        return None
    if END_OF_INPUT in error:
        return _last_code_line(masked)
    return find_token_line(masked, error)


def find_token_line(masked: str, error: str) -> int | None:
    """The line of the code token an error message names, e.g. ``foo`` in "`foo` is not ..."."""
    masked_lines = masked.split("\n")
    if "number too large" in error:
        return _first_line_matching(masked_lines, _LONG_NUMBER)
    tokens = _BACKTICKED.findall(error)
    after_colon = _AFTER_COLON.search(error)
    if after_colon is not None:
        tokens.append(after_colon.group(1))
    for token in tokens:
        pattern = re.compile(r"(?<![\w@])" + re.escape(token) + r"(?!\w)")
        # A repeated name (a duplicate annotation) is wrong at its second use.
        matches = [n for n, line in enumerate(masked_lines, 1) if pattern.search(line)]
        if not matches:
            continue
        return matches[-1] if "duplicate" in error else matches[0]
    return None


def _first_line_matching(lines: list[str], pattern: re.Pattern[str]) -> int | None:
    return next((n for n, line in enumerate(lines, 1) if pattern.search(line)), None)


def _last_code_line(masked: str) -> int:
    lines = masked.split("\n")
    return max((n for n, line in enumerate(lines, 1) if line.strip()), default=1)
