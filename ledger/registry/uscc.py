"""The unified social credit code (统一社会信用代码) of GB 32100-2015 and its check character. Pure: no Django.

A code is 18 characters from the 31-character alphabet 0-9 A-H J-N P-R T-U W-Y (no I, O, S, V, Z): registration
authority (1), entity category (1), administrative division (6, GB/T 2260), organisation code (9, GB 11714) and
the check character (1). The check character C18 is computed over the first 17 characters with the weights
W_i = 3^(i-1) mod 31 (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28):

    C18 = 31 - (Σ value(c_i) × W_i mod 31), where a result of 31 is written as 0,

and value(c) is the character's position in the alphabet (0 for "0" ... 30 for "Y").
"""

from ledger.core.errors import TranslatableError, gettext_noop

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
LENGTH = 18


class USCCError(TranslatableError, ValueError):
    """A string that is not a valid unified social credit code. `extensions` names what was expected."""

    http_status = 422
    problem_slug = "invalid-uscc"
    problem_title = gettext_noop("Invalid unified social credit code")

    field = "uscc"


def uscc_check_character(first17: str) -> str:
    """The GB 32100-2015 check character of the first 17 characters of a code (upper case, valid alphabet)."""
    if len(first17) != LENGTH - 1:
        raise USCCError(gettext_noop("want 17 characters to compute a check character, got %(length)s"),
                        length=len(first17))
    total = 0
    for position, (character, weight) in enumerate(zip(first17, WEIGHTS, strict=True), start=1):
        value = ALPHABET.find(character)
        if value < 0:
            raise USCCError(gettext_noop("character %(position)s is %(character)r, which is not in the code alphabet "
                                         "%(alphabet)s (no I, O, S, V, Z)"), position=position, character=character,
                            alphabet=ALPHABET)
        total += value * weight
    check = 31 - total % 31
    return ALPHABET[0 if check == 31 else check]


def uscc_validate(code: str) -> str:
    """Return `code` upper-cased when it is a valid unified social credit code; raise USCCError otherwise.

    A wrong check character raises with `expected_check_character` and `got_check_character` in `extensions`.
    """
    if not isinstance(code, str):
        raise USCCError(gettext_noop("unified social credit code must be a string, got %(type)s"),
                        type=type(code).__name__)
    code = code.strip().upper()
    if len(code) != LENGTH:
        raise USCCError(gettext_noop("unified social credit code must have %(want)s characters, got %(length)s"),
                        want=LENGTH, length=len(code))
    expected = uscc_check_character(code[:17])
    if code[17] != expected:
        raise USCCError(gettext_noop("unified social credit code %(code)s has check character %(got_check_character)r, "
                                     "want %(expected_check_character)r (GB 32100-2015)"), code=code,
                        expected_check_character=expected, got_check_character=code[17])
    return code
