"""RFC 8785 JSON Canonicalization Scheme (JCS) for the values a bundle holds. Pure: the standard library only.

The offline verifier (`python -m ledger.verifier`) must rebuild entry bytes, parcel geometry hashes and method parameter
hashes exactly as the registry made them with the `rfc8785` package, without needing that package: this module
is the small part of RFC 8785 those values use, and tests compare it with `rfc8785.dumps` on many random values.

    canonical_json({"b": 1, "a": [1.5, "x"]}) == b'{"a":[1.5,"x"],"b":1}'

Rules (RFC 8785 section 3.2):
- objects: members sorted by their names as UTF-16 code units; no whitespace anywhere.
- strings: UTF-8; escape `"` and `\\` and the controls U+0000..U+001F (\\b \\f \\n \\r \\t by name, the others as
  \\u00xx in lowercase hex); everything else literal. Lone surrogates are refused.
- numbers: integers within ±(2**53 - 1) as decimal digits; floats as ECMAScript's Number.prototype.toString
  (shortest round-trip digits; exponent form below 1e-6 and from 1e21 up); -0 as 0; NaN and infinities refused.
- true, false, null.
"""

import math
from collections.abc import Mapping, Sequence
from decimal import Decimal

MAX_SAFE_INTEGER = 2**53 - 1  # the largest integer every JSON parser (IEEE 754 doubles) holds exactly
_NAMED_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


class CanonicalJSONError(ValueError):
    """A value that RFC 8785 cannot encode (a float NaN or infinity, a too large integer, a lone surrogate...)."""


def _string(text: str) -> str:
    out = []
    for char in text:
        code = ord(char)
        if char in _NAMED_ESCAPES:
            out.append(_NAMED_ESCAPES[char])
        elif code < 0x20:
            out.append(f"\\u{code:04x}")
        elif 0xD800 <= code <= 0xDFFF:
            raise CanonicalJSONError(f"string holds the lone surrogate U+{code:04X}, which UTF-8 cannot carry")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def ecmascript_number(value: float) -> str:
    """`value` as ECMAScript's Number::toString writes it (ECMA-262 section 6.1.6.1.20), e.g. 1e+21, 1.5e-7, 0.000001.

    Python's repr gives the shortest digits that round-trip, which is what ECMAScript asks for; this function
    only places the decimal point and the exponent by ECMAScript's rules.
    """
    if math.isnan(value) or math.isinf(value):
        raise CanonicalJSONError(f"{value!r} is not a JSON number")
    if value == 0:
        return "0"  # both +0 and -0
    if value < 0:
        return "-" + ecmascript_number(-value)
    _sign, digit_tuple, exponent = Decimal(repr(value)).as_tuple()
    digits = "".join(map(str, digit_tuple)).rstrip("0")
    exponent += len(digit_tuple) - len(digits)  # value = int(digits) × 10**exponent
    k = len(digits)
    n = k + exponent  # value = 0.digits × 10**n, the position of the decimal point
    if k <= n <= 21:
        return digits + "0" * (n - k)
    if 0 < n <= 21:
        return digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return "0." + "0" * (-n) + digits
    shown = n - 1
    mantissa = digits if k == 1 else digits[0] + "." + digits[1:]
    return f"{mantissa}e{'+' if shown >= 0 else '-'}{abs(shown)}"


def _encode(value: object, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise CanonicalJSONError(f"integer {value} is outside ±{MAX_SAFE_INTEGER}")
        out.append(str(int(value)))
    elif isinstance(value, float):
        out.append(ecmascript_number(value))
    elif isinstance(value, str):
        out.append(_string(value))
    elif isinstance(value, Mapping):
        for key in value:
            if not isinstance(key, str):
                raise CanonicalJSONError(f"object key {key!r} is a {type(key).__name__}, want str")
        out.append("{")
        for number, key in enumerate(sorted(value, key=lambda name: name.encode("utf-16-be", "surrogatepass"))):
            if number:
                out.append(",")
            out.append(_string(key))
            out.append(":")
            _encode(value[key], out)
        out.append("}")
    elif isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        out.append("[")
        for number, item in enumerate(value):
            if number:
                out.append(",")
            _encode(item, out)
        out.append("]")
    else:
        raise CanonicalJSONError(f"a {type(value).__name__} has no JSON form")


def canonical_json(value: object) -> bytes:
    """The RFC 8785 canonical UTF-8 bytes of `value` (dict, list, str, int, float, bool, None, nested)."""
    out: list[str] = []
    _encode(value, out)
    return "".join(out).encode("utf-8")
