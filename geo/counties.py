"""Administrative division codes (GB/T 2260): six digits, province-prefecture-county."""

from geo.errors import TranslatableError, gettext_noop

# Province-level prefixes in GB/T 2260 (mainland provinces, autonomous regions and municipalities,
# plus 71 Taiwan, 81 Hong Kong, 82 Macao).
PROVINCE_PREFIXES = frozenset({
    "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37",
    "41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64", "65",
    "71", "81", "82",
})


class CountyCodeError(TranslatableError, ValueError):
    """A string that is not a county-level GB/T 2260 code."""


def validate_county_code(code: str) -> str:
    """Return `code` if it is a county-level division code, e.g. "510727" (Pingwu County, Mianyang, Sichuan).

    Raises CountyCodeError naming what is wrong: not six digits, an unknown province prefix, or a
    province- or prefecture-level code (ending in 00).
    """
    if not isinstance(code, str) or len(code) != 6 or not code.isascii() or not code.isdigit():
        raise CountyCodeError(gettext_noop("county code must be 6 digits (GB/T 2260), got %(got)s"), got=repr(code),
                              extensions={})
    if code[:2] not in PROVINCE_PREFIXES:
        raise CountyCodeError(gettext_noop("county code %(county)s has unknown province prefix %(prefix)s"),
                              county=code, prefix=code[:2])
    if code[4:] == "00":
        raise CountyCodeError(gettext_noop("%(county)s is a province or prefecture code, not a county (last two "
                                           "digits 00)"), county=code)
    return code
