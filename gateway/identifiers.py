"""Parsing, checking and masking of the French identifiers the gateway exchanges.

Three identifiers cross the gateway: the NIR (social security number of a person), the SIREN
(a company) and the SIRET (one establishment of a company). Each ``parse_*`` function normalises
what a partner typed or sent, checks its layout and check digits, and returns the canonical form
or raises :class:`InvalidIdentifierError`. The error's reason is fixed text: it never repeats the
input, because it ends up in API error bodies and logs and the input may be a real NIR.

``NIR_SHAPE`` and :func:`mask_nir` serve log redaction and display: they work on anything shaped
like a NIR, whether or not its key is right, since a mistyped NIR is still personal data.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Literal

__all__ = [
    "LA_POSTE_HEAD_OFFICE_SIRET",
    "LA_POSTE_SIREN",
    "NIR_MASK",
    "NIR_SHAPE",
    "NIR_SHAPE_MIN_LENGTH",
    "ErrorCode",
    "IdentifierKind",
    "InvalidIdentifierError",
    "is_nir_shaped",
    "luhn_check_digit",
    "luhn_is_valid",
    "mask_nir",
    "nir_key",
    "nir_with_key",
    "parse_nir",
    "parse_siren",
    "parse_siret",
    "redact_nirs",
    "siren_with_checksum",
    "siret_with_checksum",
    "token_not_nir_shaped",
]

IdentifierKind = Literal["nir", "siren", "siret"]
ErrorCode = Literal[
    "nir.malformed",
    "nir.bad_key",
    "siren.malformed",
    "siren.bad_checksum",
    "siret.malformed",
    "siret.bad_checksum",
]

# La Poste numbers its establishments under one SIREN with its own rule (digit sum divisible
# by 5) instead of Luhn; its head office predates that rule and keeps a Luhn-valid SIRET whose
# digit sum is not a multiple of 5, so it is the one La Poste SIRET checked with Luhn.
LA_POSTE_SIREN = "356000000"
LA_POSTE_HEAD_OFFICE_SIRET = "35600000000048"

# Far above any legitimately formatted identifier; refusing longer input up front keeps the
# normalisation cost bounded whatever a caller sends.
_MAX_INPUT_LENGTH = 64

_NIR_SEPARATORS = re.compile(r"[\s.\-]")
_WHITESPACE = re.compile(r"\s")
# ``[0-9]`` rather than ``\d``: ``\d`` also accepts Arabic-Indic, fullwidth and other digits,
# which ``int()`` would then silently convert.
_NIR_LAYOUT = re.compile(r"[0-9]{5}(?:[0-9]{2}|2[AB])[0-9]{8}")
_NIR_BODY_LAYOUT = re.compile(r"[0-9]{5}(?:[0-9]{2}|2[AB])[0-9]{6}")
_NINE_DIGITS = re.compile(r"[0-9]{9}")
_FOURTEEN_DIGITS = re.compile(r"[0-9]{14}")
_DIGITS = re.compile(r"[0-9]+")

# Sex digit: 1 and 2 for registered people, 3 and 4 for provisional numbers given to people
# born abroad, 7 and 8 for other temporary numbers.
_NIR_SEX_DIGITS = frozenset("123478")
# Month: 01-12 for a known month; 20-42 and 50-99 are issued when the month of birth is
# unknown or for special registrations.
_NIR_MONTHS = frozenset(
    f"{month:02d}" for month in (*range(1, 13), *range(20, 43), *range(50, 100))
)
# The key is computed as if Corsica still used its pre-1976 number 20: 2A counts as 19 and 2B
# as 18, so bodies from either department get distinct keys.
_CORSICA_DIGITS = {"2A": "19", "2B": "18"}

# Anything laid out like a NIR inside free text, valid key or not: groups 1-2-2-2-3-3-2 with
# any run of the separators ``parse_nir`` drops between groups (whitespace of any kind, such as
# the non-breaking spaces French software groups digits with, dots, hyphens), department two
# digits or 2A/2B in either case. A separator counts in its JSON-escaped form too (``\t``,
# ``\u00a0``; lower case, as JSON writes them), so that a rendered log line is searched as
# thoroughly as the values it holds. The lookarounds stop it matching a slice of a longer digit
# run; a SIREN (9 digits) or a SIRET (14) is too short to match. Separators are limited to group
# boundaries so that numbers grouped differently (phone numbers in pairs, SIRETs in threes) do
# not match.
_SEP = r"(?:[\s.\-]|(?-i:\\[bfnrt]|\\u[0-9a-fA-F]{4}))*"
NIR_SHAPE: re.Pattern[str] = re.compile(
    r"(?<![0-9])"
    + _SEP.join(
        (
            r"[0-9]",
            r"[0-9]{2}",
            r"[0-9]{2}",
            r"(?:[0-9]{2}|2[AB])",
            r"[0-9]{3}",
            r"[0-9]{3}",
            r"[0-9]{2}(?![0-9])",
        )
    ),
    re.IGNORECASE,
)

# The shortest text NIR_SHAPE matches: the 15 digits of the groups, without separators.
NIR_SHAPE_MIN_LENGTH = 15
NIR_MASK = "[NIR]"

# Every NIR_SHAPE match lies inside a run of the characters it is made of, at least
# NIR_SHAPE_MIN_LENGTH long; the characters around a run are none of them, so no digit, and the
# pattern's lookarounds decide the same inside the run as in the whole text. Finding the runs
# first is a plain character-class scan, several times cheaper than trying NIR_SHAPE at every
# digit of a text full of timestamps and ids, such as a log line.
# A text with no backslash holds no JSON escape, and its runs need not take in the letters of
# escapes (hex digits, n, r, t, u): the hex of ids in a log line then stays out of them.
_NIR_CHARACTERS_RUN = re.compile(rf"[0-9ABab\s.\-]{{{NIR_SHAPE_MIN_LENGTH},}}")
_NIR_CHARACTERS_RUN_ESCAPED = re.compile(rf"[0-9A-Fa-f\s.\-\\nrtu]{{{NIR_SHAPE_MIN_LENGTH},}}")


def _redact_run(run: re.Match[str]) -> str:
    return NIR_SHAPE.sub(NIR_MASK, run.group())


def redact_nirs(text: str) -> str:
    """``text`` with anything shaped like a NIR (see ``NIR_SHAPE``) replaced by ``[NIR]``."""
    if len(text) < NIR_SHAPE_MIN_LENGTH:
        # Nothing shorter can hold one: most texts (log fields, codes) skip the scan.
        return text
    runs = _NIR_CHARACTERS_RUN_ESCAPED if "\\" in text else _NIR_CHARACTERS_RUN
    return runs.sub(_redact_run, text)


_MASKED_TAIL = " ** ** ** *** *** **"


class InvalidIdentifierError(ValueError):
    """An identifier failed its layout or check-digit test.

    ``code`` is stable and meant for machines (API error codes, metrics); ``reason`` is fixed
    human-readable text that never contains the rejected input.
    """

    kind: IdentifierKind
    code: ErrorCode
    reason: str

    def __init__(self, kind: IdentifierKind, code: ErrorCode, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.code = code
        self.reason = reason

    def __reduce__(self) -> tuple[type[InvalidIdentifierError], tuple[str, str, str]]:
        # The default reduction replays ``args`` (the reason only) into ``__init__``, which
        # needs three arguments; errors must survive pickling to cross process pools.
        return (type(self), (self.kind, self.code, self.reason))


def _nir_error(code: ErrorCode, reason: str) -> InvalidIdentifierError:
    return InvalidIdentifierError("nir", code, reason)


def _siren_error(code: ErrorCode, reason: str) -> InvalidIdentifierError:
    return InvalidIdentifierError("siren", code, reason)


def _siret_error(code: ErrorCode, reason: str) -> InvalidIdentifierError:
    return InvalidIdentifierError("siret", code, reason)


_MALFORMED: dict[IdentifierKind, ErrorCode] = {
    "nir": "nir.malformed",
    "siren": "siren.malformed",
    "siret": "siret.malformed",
}


def _normalise(raw: object, separators: re.Pattern[str], kind: IdentifierKind) -> str:
    name = kind.upper()
    if not isinstance(raw, str):
        raise InvalidIdentifierError(kind, _MALFORMED[kind], f"the {name} must be a string")
    if len(raw) > _MAX_INPUT_LENGTH:
        raise InvalidIdentifierError(kind, _MALFORMED[kind], f"the {name} is too long")
    value = separators.sub("", raw).upper()
    if not value:
        raise InvalidIdentifierError(kind, _MALFORMED[kind], f"the {name} is empty")
    return value


# --- NIR -------------------------------------------------------------------------------------


def _nir_number(body: str) -> int:
    department = body[5:7]
    digits = body[:5] + _CORSICA_DIGITS.get(department, department) + body[7:]
    return int(digits)


def nir_key(body: str) -> int:
    """The key (1..97) of a 13-character NIR body; the department may be 2A or 2B.

    Only the character layout is checked here, not the sex, month or other field values, so
    that test-data generators can also build deliberately implausible bodies.
    """
    if not isinstance(body, str) or not _NIR_BODY_LAYOUT.fullmatch(body.upper()):
        raise _nir_error(
            "nir.malformed",
            "a NIR body must have 13 characters: digits, with 2A or 2B as department",
        )
    return 97 - _nir_number(body.upper()) % 97


def nir_with_key(body13: str) -> str:
    """The 15-character NIR made of ``body13`` followed by its two-digit key."""
    key = nir_key(body13)
    return f"{body13.upper()}{key:02d}"


def parse_nir(raw: str) -> str:
    """Normalise and check a NIR; return its 15-character form (department 2A/2B upper-case).

    Spaces, dots and hyphens are ignored wherever they are.
    """
    value = _normalise(raw, _NIR_SEPARATORS, "nir")
    if len(value) != 15:
        raise _nir_error("nir.malformed", "a NIR must have 15 characters: 13 and a 2-digit key")
    if not _NIR_LAYOUT.fullmatch(value):
        raise _nir_error(
            "nir.malformed", "a NIR must be made of digits, with 2A or 2B as department"
        )
    if value[0] not in _NIR_SEX_DIGITS:
        raise _nir_error("nir.malformed", "the first digit of the NIR is not a valid sex code")
    if value[3:5] not in _NIR_MONTHS:
        raise _nir_error("nir.malformed", "the month of birth in the NIR is not a valid value")
    stated_key = int(value[13:])
    if not 1 <= stated_key <= 97:
        raise _nir_error("nir.bad_key", "the NIR key must be between 01 and 97")
    if stated_key != nir_key(value[:13]):
        raise _nir_error("nir.bad_key", "the NIR key does not match its number")
    return value


def mask_nir(nir: str) -> str:
    """A display form keeping only the sex digit, e.g. ``1 ** ** ** *** *** **``.

    Never raises: anything that is not laid out like a NIR comes back fully masked, and the
    output has the same length whatever the input, so it reveals nothing else.
    """
    if isinstance(nir, str) and len(nir) <= _MAX_INPUT_LENGTH:
        value = _NIR_SEPARATORS.sub("", nir).upper()
        if _NIR_LAYOUT.fullmatch(value):
            return value[0] + _MASKED_TAIL
    return "*" + _MASKED_TAIL


def token_not_nir_shaped(make: Callable[[], str]) -> str:
    """A random token from ``make`` in which no run of characters looks like a NIR.

    Identifiers the gateway issues (request ids, client ids) travel through logs and audit
    records, where anything NIR-shaped is masked: one that happened to contain such a run
    would no longer match itself there.
    """
    while True:
        token = make()
        if not NIR_SHAPE.search(token):
            return token


def is_nir_shaped(text: str) -> bool:
    """Whether ``text`` contains something laid out like a NIR (see ``NIR_SHAPE``)."""
    return NIR_SHAPE.search(text) is not None


# --- Luhn, SIREN, SIRET ----------------------------------------------------------------------


# Each digit's value once doubled, less 9 when above 9, as one character.
_DOUBLED_DIGIT = str.maketrans("0123456789", "0246813579")


def _luhn_sum(digits: str, *, double_rightmost: bool) -> int:
    # Summing the bytes of every other digit is several times cheaper than a loop over the
    # digits, and every request checks three or four identifiers.
    from_right = digits[::-1]
    kept, doubled = from_right[1::2], from_right[0::2]
    if not double_rightmost:
        kept, doubled = doubled, kept
    total = sum(kept.encode()) + sum(doubled.translate(_DOUBLED_DIGIT).encode())
    return total - 48 * len(digits)  # each digit's byte is its value plus 48


def luhn_is_valid(digits: str) -> bool:
    """Whether a non-empty string of ASCII digits passes the Luhn check; False for anything else."""
    if not isinstance(digits, str) or not _DIGITS.fullmatch(digits):
        return False
    return _luhn_sum(digits, double_rightmost=False) % 10 == 0


def luhn_check_digit(payload: str) -> int:
    """The digit that, appended to ``payload`` (ASCII digits), makes it pass the Luhn check."""
    if not isinstance(payload, str) or not _DIGITS.fullmatch(payload):
        raise ValueError("a Luhn payload must be a non-empty string of digits")
    # Once the check digit is appended, the payload's rightmost digit sits in a doubled slot.
    return (10 - _luhn_sum(payload, double_rightmost=True) % 10) % 10


def siren_with_checksum(prefix8: str) -> str:
    """The 9-digit SIREN made of ``prefix8`` (8 digits) and its Luhn check digit."""
    if not isinstance(prefix8, str) or not re.fullmatch(r"[0-9]{8}", prefix8):
        raise _siren_error("siren.malformed", "a SIREN prefix must have exactly 8 digits")
    return prefix8 + str(luhn_check_digit(prefix8))


def parse_siren(raw: str) -> str:
    """Normalise (whitespace removed) and check a SIREN; return its 9 digits."""
    value = _normalise(raw, _WHITESPACE, "siren")
    if not _NINE_DIGITS.fullmatch(value):
        raise _siren_error("siren.malformed", "a SIREN must have exactly 9 digits")
    if not luhn_is_valid(value):
        raise _siren_error("siren.bad_checksum", "the SIREN check digit is wrong")
    return value


def _siret_checksum_ok(value: str) -> bool:
    if value.startswith(LA_POSTE_SIREN) and value != LA_POSTE_HEAD_OFFICE_SIRET:
        return sum(ord(char) - 48 for char in value) % 5 == 0
    return luhn_is_valid(value)


def parse_siret(raw: str) -> str:
    """Normalise (whitespace removed) and check a SIRET; return its 14 digits.

    Besides the SIRET's own check (Luhn, or La Poste's digit-sum rule), its first nine digits
    must be a valid SIREN: no real establishment belongs to an impossible company.
    """
    value = _normalise(raw, _WHITESPACE, "siret")
    if not _FOURTEEN_DIGITS.fullmatch(value):
        raise _siret_error("siret.malformed", "a SIRET must have exactly 14 digits")
    if not _siret_checksum_ok(value):
        raise _siret_error("siret.bad_checksum", "the SIRET check digit is wrong")
    if not luhn_is_valid(value[:9]):
        raise _siret_error("siret.bad_checksum", "the SIREN part of the SIRET is not valid")
    return value


def siret_with_checksum(prefix13: str) -> str:
    """The 14-digit SIRET made of ``prefix13`` (a valid SIREN and 4 NIC digits) and a last digit.

    For La Poste the last digit is the smallest that makes the digit sum a multiple of 5.
    """
    if not isinstance(prefix13, str) or not re.fullmatch(r"[0-9]{13}", prefix13):
        raise _siret_error("siret.malformed", "a SIRET prefix must have exactly 13 digits")
    if not luhn_is_valid(prefix13[:9]):
        raise _siret_error("siret.bad_checksum", "the SIREN part of the SIRET is not valid")
    if prefix13.startswith(LA_POSTE_SIREN):
        return prefix13 + str(-sum(ord(char) - 48 for char in prefix13) % 5)
    return prefix13 + str(luhn_check_digit(prefix13))
