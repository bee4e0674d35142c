"""ledger.core.canonical_json agrees with the rfc8785 package (the registry's canonicaliser) byte for byte, so the
offline verifier rebuilds entry bytes and geometry hashes without it."""

import math
import random
import struct

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.core.canonical_json import CanonicalJSONError, canonical_json, ecmascript_number

SAFE = 2**53 - 1
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-SAFE, SAFE) | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(), children, max_size=5),
    max_leaves=30)


@settings(max_examples=2000, deadline=None)
@given(json_values)
def test_agrees_with_rfc8785_on_random_values(value):
    assert canonical_json(value) == rfc8785.dumps(value)


def test_agrees_on_random_float_bit_patterns():
    generator = random.Random(8785)
    for _ in range(50_000):
        value = struct.unpack("<d", generator.getrandbits(64).to_bytes(8, "little"))[0]
        if math.isfinite(value):
            assert canonical_json(value) == rfc8785.dumps(value), value


@pytest.mark.parametrize(("value", "text"), [
    # ECMA-262 Number::toString: exponent form from 1e21 up and below 1e-6 (RFC 8785 appendix B examples)
    (1e21, "1e+21"), (1e20, "100000000000000000000"), (1e-7, "1e-7"), (1e-6, "0.000001"), (0.1, "0.1"),
    (-0.0, "0"), (5e-324, "5e-324"), (1.7976931348623157e308, "1.7976931348623157e+308"),
    (333333333.3333333, "333333333.3333333"), (104.5, "104.5"), (100.0, "100"),
])
def test_ecmascript_number_examples(value, text):
    assert ecmascript_number(value) == text


def test_strings_and_key_order_by_utf16_code_units():
    # U+1F600 is the surrogate pair D83D DE00, which sorts before U+FFFF in UTF-16 (not in code points)
    value = {"\uffff": 1, "\U0001f600": 2, "a": "\u2028\x1f\"\\\n"}
    assert canonical_json(value) == '{"a":"\u2028\\u001f\\"\\\\\\n","\U0001f600":2,"\uffff":1}'.encode()
    assert canonical_json(value) == rfc8785.dumps(value)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 2**53, "\ud800", {1: "x"}, b"bytes"])
def test_refuses_what_json_cannot_carry(value):
    with pytest.raises(CanonicalJSONError):
        canonical_json(value)
