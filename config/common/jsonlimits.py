"""JSON that no input can crash: a nesting-depth limit checked without recursion, before the parser runs.

Python's json parser recurses once per nested array or object, in C, guarded only by the interpreter's recursion
limit; a dependency imported at start-up (py_ecc, through web3 and eth_account) raises that limit to 100,000, so a
200 KB body of "[[[[..." overflows the C stack and kills the process instead of raising RecursionError. `json_loads`
therefore measures the depth first, with regular expressions and a running sum (no recursion, linear time), and
refuses anything nested deeper than MAX_JSON_DEPTH, whatever the recursion limit is. It also refuses what parses
but no JSON consumer can rely on (RFC 8259 sections 6 and 8.2, RFC 7493): numbers beyond a double's range (1e400,
which Python reads as infinity), NaN and Infinity, strings holding a lone UTF-16 surrogate, and strings holding
U+0000, which PostgreSQL text and jsonb cannot store.

The standard library, and the error it raises. The same rules live in `geo.jsontext` (for the pure legend parser,
which imports no config) and in `ledger.verifier.checks` (the offline kit imports nothing of the service); one test
table checks all three (tests/foundation/test_input_limits.py).
"""

import itertools
import json
import math
import re

from config.common.errors import JSONInputError, gettext_noop

__all__ = ["MAX_JSON_DEPTH", "json_depth", "json_loads"]

# Arrays and objects inside one another: a GeoJSON FeatureCollection of MultiPolygons needs 8, a pledge bundle 6.
MAX_JSON_DEPTH = 64

# A JSON string, or the unterminated rest of the text from an opening quote: the parser stops there too. Possessive,
# so that no input makes the match backtrack.
_STRING = re.compile(r'"(?:[^"\\]++|\\.)*+(?:"|\\?\Z)', re.DOTALL)
_INNERMOST = re.compile(r"[\[{][^\[\]{}]*+[\]}]")  # an array or object with no array or object inside
_NOT_BRACKET = re.compile(r"[^\[\]{}]++")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}
_UNSTORABLE_ESCAPE = re.compile(r"\\u(?:[dD][89a-fA-F]|0000)")  # a surrogate, or NUL
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def json_depth(text: str) -> int:
    """How deep arrays and objects nest in JSON `text`: exact for valid JSON; for invalid JSON never less than the
    depth a parser reaches before it finds the fault. Linear time, no recursion.

    Strings are blanked first (their brackets are text), then the innermost arrays and objects are collapsed twice
    (most of a large document: GeoJSON positions and rings), then the rest is a running sum of +1 per opening and
    -1 per closing bracket, whose maximum is the remaining depth.
    """
    text = _STRING.sub("0", text)
    collapsed = 0
    for _ in range(2):
        text, removed = _INNERMOST.subn("0", text)
        if not removed:
            break
        collapsed += 1
    brackets = _NOT_BRACKET.sub("", text)
    return collapsed + max(0, max(itertools.accumulate(map(_STEP.__getitem__, brackets)), default=0))


def _finite_float(literal: str) -> float:
    value = float(literal)
    if math.isinf(value):
        raise JSONInputError(gettext_noop("JSON number %(number)s is beyond the range of a double (about "
                                          "1.8e308)"), number=literal[:40])
    return value


def _no_constant(name: str):
    raise JSONInputError(gettext_noop("%(constant)s is not a JSON value"), constant=name)


def _check_strings(document) -> None:
    """Refuse a lone surrogate or a NUL in any string or key of `document`, walking it without recursion."""
    pending = [document]
    while pending:
        value = pending.pop()
        if isinstance(value, str):
            found = _UNSTORABLE.search(value)
            if found and found.group() == "\x00":
                raise JSONInputError(gettext_noop("a JSON string holds U+0000 (NUL), which cannot be stored"))
            if found:
                raise JSONInputError(gettext_noop("a JSON string holds a lone UTF-16 surrogate (\\u%(code)s), which "
                                                  "is not a character"), code=f"{ord(found.group()):04x}")
        elif isinstance(value, dict):
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)


def json_loads(text: str | bytes, *, max_depth: int = MAX_JSON_DEPTH):
    """Parse JSON `text` (bytes are read as UTF-8) or raise JSONInputError (HTTP 400) saying why: not UTF-8, nested
    deeper than `max_depth`, not JSON, a number beyond a double, NaN or Infinity, a lone surrogate or a NUL."""
    if isinstance(text, bytes | bytearray):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JSONInputError(gettext_noop("JSON must be UTF-8 text; byte %(position)s (0x%(byte)s) is not"),
                                 position=exc.start, byte=f"{exc.object[exc.start]:02x}") from None
    depth = json_depth(text)
    if depth > max_depth:
        raise JSONInputError(gettext_noop("JSON nests arrays and objects %(depth)s deep; at most %(max_depth)s "
                                          "levels are accepted"), depth=depth, max_depth=max_depth)
    try:
        document = json.loads(text, parse_float=_finite_float, parse_constant=_no_constant)
    except JSONInputError:
        raise
    except ValueError as exc:  # JSONDecodeError, or an integer of more than 4,300 digits
        raise JSONInputError(gettext_noop("not JSON: %(reason)s"), reason=str(exc)) from None
    if _UNSTORABLE_ESCAPE.search(text):
        _check_strings(document)
    return document
