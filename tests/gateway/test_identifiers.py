"""NIR, SIREN and SIRET parsing: check digits, La Poste's exception, redaction shapes.

The check-digit properties rest on two facts. A NIR key is 97 minus the number modulo 97;
changing one digit changes the number by k * 10**p with 0 < |k| <= 9, and as 97 is a prime that
divides neither k nor 10, the remainder, hence the key, always changes (the same goes for a
department switching between a digit pair and 2A/2B, which moves the number by at most 10
units of 10**6). Luhn doubles every other digit, and the map d -> digit sum of 2d is a
permutation of 0..9, so any single-digit change moves the total by a non-multiple of 10.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Callable
from typing import cast

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from gateway.identifiers import (
    LA_POSTE_HEAD_OFFICE_SIRET,
    LA_POSTE_SIREN,
    NIR_MASK,
    NIR_SHAPE,
    NIR_SHAPE_MIN_LENGTH,
    InvalidIdentifierError,
    is_nir_shaped,
    luhn_check_digit,
    luhn_is_valid,
    mask_nir,
    nir_key,
    nir_with_key,
    parse_nir,
    parse_siren,
    parse_siret,
    redact_nirs,
    siren_with_checksum,
    siret_with_checksum,
    token_not_nir_shaped,
)

# No deadline: a loaded CI runner must not turn a slow example into a failure.
PROPERTY = settings(max_examples=300, deadline=None)


def digits(size: int) -> st.SearchStrategy[str]:
    return st.text(alphabet="0123456789", min_size=size, max_size=size)


VALID_MONTHS = [f"{m:02d}" for m in (*range(1, 13), *range(20, 43), *range(50, 100))]
departments = st.one_of(digits(2), st.sampled_from(["2A", "2B"]))
nir_bodies = st.builds(
    lambda sex, year, month, dept, commune, order: sex + year + month + dept + commune + order,
    st.sampled_from("123478"),
    digits(2),
    st.sampled_from(VALID_MONTHS),
    departments,
    digits(3),
    digits(3),
)
corsican_nir_bodies = st.builds(
    lambda head, dept, tail: head + dept + tail,
    nir_bodies.map(lambda body: body[:5]),
    st.sampled_from(["2A", "2B"]),
    digits(6),
)
sirens = digits(8).map(siren_with_checksum)
ordinary_sirets = st.builds(
    lambda siren, nic: siret_with_checksum(siren + nic),
    sirens.filter(lambda siren: siren != LA_POSTE_SIREN),
    digits(4),
)


def fullwidth(ascii_digits: str) -> str:
    """The same digits in fullwidth forms, which ``str.isdigit`` and ``int`` also accept."""
    return ascii_digits.translate({ord("0") + i: 0xFF10 + i for i in range(10)})


def arabic_indic(ascii_digits: str) -> str:
    return ascii_digits.translate({ord("0") + i: 0x0660 + i for i in range(10)})


def reference_luhn(number: str) -> bool:
    """Luhn written differently from the module's: table lookup, counted from the left."""
    doubled = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)
    parity = len(number) % 2
    total = sum(
        doubled[int(c)] if index % 2 == parity else int(c) for index, c in enumerate(number)
    )
    return total % 10 == 0


def reference_nir_key(body: str) -> int:
    number = body[:5] + {"2A": "19", "2B": "18"}.get(body[5:7], body[5:7]) + body[7:]
    return 97 - int(number) % 97


def expect_error(parse: Callable[[str], str], raw: str, code: str) -> InvalidIdentifierError:
    with pytest.raises(InvalidIdentifierError) as caught:
        parse(raw)
    error = caught.value
    assert error.code == code
    assert error.kind == code.split(".")[0]
    assert str(error) == error.reason
    significant = raw.strip()
    if len(significant) >= 3:
        for text in (error.reason, str(error), repr(error), repr(error.args)):
            assert significant not in text
            assert re.sub(r"[\s.\-]", "", significant) not in text
    return error


# --- NIR: properties ------------------------------------------------------------------------


@PROPERTY
@given(nir_bodies)
def test_any_body_with_its_computed_key_parses(body: str) -> None:
    key = nir_key(body)
    assert 1 <= key <= 97
    assert key == reference_nir_key(body)
    nir = nir_with_key(body)
    assert nir == body + f"{key:02d}"
    assert parse_nir(nir) == nir
    spaced = " ".join((nir[0], nir[1:3], nir[3:5], nir[5:7], nir[7:10], nir[10:13], nir[13:]))
    assert parse_nir(f"  {spaced.lower()}  ") == nir
    assert parse_nir(spaced.replace(" ", ".")) == nir


@PROPERTY
@given(nir_bodies, st.integers(min_value=0, max_value=14), st.sampled_from("0123456789AB"))
def test_any_single_character_change_invalidates_a_nir(body: str, position: int, new: str) -> None:
    nir = nir_with_key(body)
    assume(nir[position] != new)
    mutated = nir[:position] + new + nir[position + 1 :]
    with pytest.raises(InvalidIdentifierError) as caught:
        parse_nir(mutated)
    assert caught.value.code in {"nir.malformed", "nir.bad_key"}


# Year, commune, order number and key take any digit, so a change there leaves a well-formed
# NIR whose only fault is the key.
FREE_DIGIT_POSITIONS = [1, 2, 7, 8, 9, 10, 11, 12, 13, 14]


@PROPERTY
@given(nir_bodies, st.sampled_from(FREE_DIGIT_POSITIONS), st.sampled_from("0123456789"))
def test_a_digit_change_in_a_free_field_fails_the_key_check(
    body: str, position: int, new: str
) -> None:
    nir = nir_with_key(body)
    assume(nir[position] != new)
    mutated = nir[:position] + new + nir[position + 1 :]
    expect_error(parse_nir, mutated, "nir.bad_key")


@PROPERTY
@given(nir_bodies.filter(lambda body: body[5:7].isdigit()), st.sampled_from("0123456789"))
def test_a_department_digit_change_fails_the_key_check(body: str, new: str) -> None:
    nir = nir_with_key(body)
    for position in (5, 6):
        if nir[position] != new:
            mutated = nir[:position] + new + nir[position + 1 :]
            expect_error(parse_nir, mutated, "nir.bad_key")


@PROPERTY
@given(corsican_nir_bodies)
def test_corsican_bodies_round_trip(body: str) -> None:
    nir = nir_with_key(body)
    assert parse_nir(nir) == nir
    assert parse_nir(nir.lower()) == nir
    # The key is that of the body with the department's pre-1976 digits substituted.
    legacy = body[:5] + ("19" if body[5:7] == "2A" else "18") + body[7:]
    assert nir_key(body) == nir_key(legacy)
    other = body[:6] + ("B" if body[6] == "A" else "A") + body[7:]
    assert nir_key(other) != nir_key(body)
    expect_error(parse_nir, other + nir[13:], "nir.bad_key")


def raised_by(parse: Callable[[str], str], raw: str) -> InvalidIdentifierError | None:
    try:
        parse(raw)
    except InvalidIdentifierError as error:
        return error
    return None


@PROPERTY
@given(st.sampled_from([parse_nir, parse_siren, parse_siret]), st.text(max_size=40))
def test_parsers_raise_only_invalid_identifier_without_digit_runs(
    parse: Callable[[str], str], raw: str
) -> None:
    error = raised_by(parse, raw)
    if error is not None:
        # No run of three digits in a reason means no identifier can be echoed through it.
        assert re.search(r"[0-9]{3}", error.reason) is None


# --- NIR: examples --------------------------------------------------------------------------


def test_health_card_specimen() -> None:
    # 1841276451089 = 97 * 18982231454 + 51, so the key is 97 - 51 = 46.
    assert nir_key("1841276451089") == 46
    assert parse_nir("1 84 12 76 451 089 46") == "184127645108946"
    assert parse_nir("1-84-12-76-451-089-46") == "184127645108946"


@pytest.mark.parametrize(
    ("spaced", "expected"),
    [
        # 2A counts as 19: 1850319004123 = 97 * 19075453650 + 73, key 97 - 73 = 24.
        ("1 85 03 2A 004 123 24", "185032A00412324"),
        # 2B counts as 18: 2690518012345 = 97 * 27737299096 + 33, key 97 - 33 = 64.
        ("2 69 05 2b 012 345 64", "269052B01234564"),
    ],
)
def test_corsican_examples(spaced: str, expected: str) -> None:
    assert parse_nir(spaced) == expected


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("", "nir.malformed"),
        ("   ", "nir.malformed"),
        ("None", "nir.malformed"),
        ("null", "nir.malformed"),
        ("undefined", "nir.malformed"),
        ("18412764510894", "nir.malformed"),  # 14 characters
        ("1841276451089466", "nir.malformed"),  # 16 characters
        ("1841276451O8946", "nir.malformed"),  # letter O for a zero
        ("18412762C108946", "nir.malformed"),  # department 2C
        ("1841276451089461" * 5, "nir.malformed"),  # absurdly long
        (fullwidth("184127645108946"), "nir.malformed"),
        ("184127645108900", "nir.bad_key"),
        ("184127645108998", "nir.bad_key"),
        ("184127645108999", "nir.bad_key"),
        ("184127645108947", "nir.bad_key"),
    ],
)
def test_malformed_nirs(raw: str, code: str) -> None:
    expect_error(parse_nir, raw, code)


@pytest.mark.parametrize("key", ["00", "98", "99"])
def test_out_of_range_key_is_reported_as_such(key: str) -> None:
    error = expect_error(parse_nir, "1841276451089" + key, "nir.bad_key")
    assert error.reason == "the NIR key must be between 01 and 97"


@pytest.mark.parametrize(
    "body",
    [
        "1841376451089",  # month 13
        "1840076451089",  # month 00
        "1844376451089",  # month 43
        "1841976451089",  # month 19
        "5841276451089",  # sex digit 5
        "0841276451089",  # sex digit 0
    ],
)
def test_nir_with_impossible_fields_is_malformed_even_with_the_right_key(body: str) -> None:
    expect_error(parse_nir, nir_with_key(body), "nir.malformed")


def test_non_string_nir_is_malformed() -> None:
    with pytest.raises(InvalidIdentifierError) as caught:
        parse_nir(cast("str", None))
    assert caught.value.code == "nir.malformed"


@pytest.mark.parametrize("body", ["", "184127645108", "18412764510894", "18412762C1089", "x" * 13])
def test_nir_key_rejects_bad_bodies(body: str) -> None:
    with pytest.raises(InvalidIdentifierError) as caught:
        nir_key(body)
    assert caught.value.code == "nir.malformed"


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("184127645108946", "1 ** ** ** *** *** **"),
        ("2 69 05 2B 012 345 64", "2 ** ** ** *** *** **"),
        ("184127645108900", "1 ** ** ** *** *** **"),  # shaped like a NIR, wrong key
        ("not a nir", "* ** ** ** *** *** **"),
        ("", "* ** ** ** *** *** **"),
        ("8" * 200, "* ** ** ** *** *** **"),
    ],
)
def test_mask_nir(raw: str, masked: str) -> None:
    assert mask_nir(raw) == masked


# --- NIR_SHAPE ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "184127645108946",
        "1 84 12 76 451 089 46",
        "1.84.12.76.451.089.46",
        '{"nir": "184127645108946", "status": "ok"}',
        "2024-05-01T10:00:00Z lookup nir=1 84 12 76 451 089 46 partner=caf",
        "185032A00412324",
        "185032a00412324",
        "identifiant 2 69 05 2b 012 345 64.",
        "184127645108900",  # wrong key: still personal data
        "NIR:184127645108946;",
        # Grouped as French software groups digits: non-breaking spaces, narrow or not.
        "1\u00a084\u00a012\u00a076\u00a0451\u00a0089\u00a046",
        "1\u202f84\u202f12\u202f76\u202f451\u202f089\u202f46",
        "1  84  12 76\t451 089 46",
        # The same separators as a JSON rendering escapes them.
        '{"path": "1\\t84\\t12\\t76\\t451\\t089\\t46"}',
        '{"ref": "1\\u00a084\\u00a012\\u00a076\\u00a0451\\u00a0089\\u00a046"}',
    ],
)
def test_nir_shape_matches(text: str) -> None:
    assert is_nir_shaped(text)


@pytest.mark.parametrize(
    "text",
    [
        "552081317",  # SIREN
        "552 081 317",
        "35600000000048",  # SIRET
        "356 000 000 00048",
        "1184127645108946",  # 16 digits
        "18412764510894612345",  # 20 digits
        "0612345678",
        "06 12 34 56 78",
        "+33 6 12 34 56 78",
        "18412762C108946",
        "1 84 12 76 451 089 4",
        "2024-05-01T10:00:00.123456Z",
    ],
)
def test_nir_shape_does_not_match(text: str) -> None:
    assert not is_nir_shaped(text)


@PROPERTY
@given(
    nir_bodies,
    st.text(alphabet='abc ={}":,', max_size=10),
    st.text(alphabet="xyz }", max_size=10),
)
def test_nir_shape_finds_every_generated_nir_in_text(body: str, before: str, after: str) -> None:
    nir = nir_with_key(body)
    match = NIR_SHAPE.search(before + nir.lower() + after)
    assert match is not None
    assert match.group().upper() == nir


def test_nothing_shorter_than_the_minimum_length_is_nir_shaped() -> None:
    """Log redaction skips shorter strings: the bound must be the regex's own minimum width."""
    shortest, _ = re._parser.parse(NIR_SHAPE.pattern, NIR_SHAPE.flags).getwidth()  # type: ignore[attr-defined]

    assert shortest == NIR_SHAPE_MIN_LENGTH
    assert is_nir_shaped("184127645108946"[:NIR_SHAPE_MIN_LENGTH])


@PROPERTY
@given(
    nir_bodies,
    st.text(alphabet='abc ={}":,0123456789', max_size=20),
    st.text(alphabet="xyz }", max_size=10),
)
def test_redaction_leaves_no_nir_shape(body: str, before: str, after: str) -> None:
    text = before + " " + nir_with_key(body) + after

    redacted = redact_nirs(text)

    assert "[NIR]" in redacted
    assert not is_nir_shaped(redacted)


@settings(max_examples=1000, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(alphabet="0123456789 .-ABab2xT:\u00a0\t\\ntu", max_size=25),
            st.builds(
                lambda body, separator, case: case(
                    separator.join(
                        (body[0], body[1:3], body[3:5], body[5:7], body[7:10], body[10:13])
                    )
                    + separator
                    + nir_with_key(body)[13:]
                ),
                nir_bodies,
                st.sampled_from(["", " ", ".", "-", "\u00a0", "\t", "  ", "\\t", "\\u00a0"]),
                st.sampled_from([str.upper, str.lower]),
            ),
        ),
        max_size=6,
    ).map("".join)
)
def test_redaction_masks_exactly_what_the_nir_shape_matches(text: str) -> None:
    """The two-step scan (runs of NIR characters, then the shape inside each) changes the text
    exactly as one pass of the shape over the whole text would."""
    assert redact_nirs(text) == NIR_SHAPE.sub(NIR_MASK, text)


@PROPERTY
@given(nir_bodies, digits(1))
def test_nir_shape_ignores_a_nir_glued_to_more_digits(body: str, extra: str) -> None:
    nir = nir_with_key(body)
    assert not is_nir_shaped(extra + nir)
    assert not is_nir_shaped(nir + extra)


# --- Luhn, SIREN ----------------------------------------------------------------------------


@PROPERTY
@given(digits(8))
def test_siren_with_checksum_validates(prefix: str) -> None:
    siren = siren_with_checksum(prefix)
    assert len(siren) == 9
    assert siren.startswith(prefix)
    assert luhn_is_valid(siren)
    assert reference_luhn(siren)
    assert parse_siren(siren) == siren
    assert parse_siren(f" {siren[:3]} {siren[3:6]} {siren[6:]} ") == siren
    # The check digit is the only one that works.
    for digit in "0123456789":
        if digit != siren[-1]:
            assert not luhn_is_valid(prefix + digit)


@PROPERTY
@given(sirens, st.integers(min_value=0, max_value=8), st.sampled_from("0123456789"))
def test_a_single_digit_change_invalidates_a_siren(siren: str, position: int, new: str) -> None:
    assume(siren[position] != new)
    mutated = siren[:position] + new + siren[position + 1 :]
    assert not luhn_is_valid(mutated)
    expect_error(parse_siren, mutated, "siren.bad_checksum")


@PROPERTY
@given(st.text(alphabet="0123456789", min_size=1, max_size=30))
def test_luhn_agrees_with_an_independent_implementation(number: str) -> None:
    assert luhn_is_valid(number) == reference_luhn(number)
    assert luhn_is_valid(number + str(luhn_check_digit(number)))


@pytest.mark.parametrize(
    "value", ["", "12a4", " 1234", fullwidth("552081317"), arabic_indic("552081317")]
)
def test_luhn_is_false_for_non_digit_strings(value: str) -> None:
    assert not luhn_is_valid(value)


@pytest.mark.parametrize(
    "siren",
    [
        "356000000",  # La Poste
        "552081317",  # EDF
        "542051180",  # TotalEnergies
        "130025265",  # DINUM
    ],
)
def test_published_sirens(siren: str) -> None:
    assert reference_luhn(siren)
    assert parse_siren(siren) == siren


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("", "siren.malformed"),
        ("  ", "siren.malformed"),
        ("None", "siren.malformed"),
        ("null", "siren.malformed"),
        ("55208131", "siren.malformed"),  # 8 digits
        ("5520813170", "siren.malformed"),  # 10 digits
        ("55208131A", "siren.malformed"),
        ("552-081-317", "siren.malformed"),
        (fullwidth("552081317"), "siren.malformed"),
        ("552081318", "siren.bad_checksum"),
        ("552081371", "siren.bad_checksum"),  # two digits swapped
    ],
)
def test_malformed_sirens(raw: str, code: str) -> None:
    expect_error(parse_siren, raw, code)


@pytest.mark.parametrize("prefix", ["", "1234567", "123456789", "1234567a", cast("str", None)])
def test_siren_with_checksum_rejects_bad_prefixes(prefix: str) -> None:
    with pytest.raises(InvalidIdentifierError):
        siren_with_checksum(prefix)


# --- SIRET ----------------------------------------------------------------------------------


@PROPERTY
@given(ordinary_sirets)
def test_generated_sirets_validate(siret: str) -> None:
    assert luhn_is_valid(siret)
    assert reference_luhn(siret)
    assert parse_siret(siret) == siret
    assert parse_siret(f"{siret[:3]} {siret[3:6]} {siret[6:9]} {siret[9:]}") == siret


@PROPERTY
@given(ordinary_sirets, st.integers(min_value=0, max_value=13), st.sampled_from("0123456789"))
def test_a_single_digit_change_invalidates_a_siret(siret: str, position: int, new: str) -> None:
    assume(siret[position] != new)
    mutated = siret[:position] + new + siret[position + 1 :]
    # A valid SIREN is never one digit away from La Poste's (itself valid), so the change
    # cannot bring the SIRET under La Poste's rule.
    assert not mutated.startswith(LA_POSTE_SIREN)
    expect_error(parse_siret, mutated, "siret.bad_checksum")


@PROPERTY
@given(digits(5))
def test_la_poste_sirets_follow_the_digit_sum_rule(nic: str) -> None:
    siret = LA_POSTE_SIREN + nic
    if sum(map(int, siret)) % 5 == 0 or siret == LA_POSTE_HEAD_OFFICE_SIRET:
        assert parse_siret(siret) == siret
    else:
        expect_error(parse_siret, siret, "siret.bad_checksum")


@PROPERTY
@given(digits(4))
def test_siret_with_checksum_for_la_poste(nic_prefix: str) -> None:
    siret = siret_with_checksum(LA_POSTE_SIREN + nic_prefix)
    assert sum(map(int, siret)) % 5 == 0
    assert parse_siret(siret) == siret


def test_la_poste_head_office_keeps_luhn() -> None:
    # Its digit sum is 26, not a multiple of 5, but it passes Luhn.
    assert sum(map(int, LA_POSTE_HEAD_OFFICE_SIRET)) == 26
    assert reference_luhn(LA_POSTE_HEAD_OFFICE_SIRET)
    assert parse_siret("356 000 000 00048") == LA_POSTE_HEAD_OFFICE_SIRET


@pytest.mark.parametrize(
    "siret",
    [
        "35600000000048",  # La Poste head office (Luhn)
        "35600000000001",  # a La Poste establishment: digit sum 15
        "73282932000074",  # Luhn
        "55208131766522",  # EDF SIREN, Luhn
    ],
)
def test_checksum_valid_sirets(siret: str) -> None:
    assert reference_luhn(siret) or (
        siret.startswith(LA_POSTE_SIREN) and sum(map(int, siret)) % 5 == 0
    )
    assert reference_luhn(siret[:9])
    assert parse_siret(siret) == siret


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("", "siret.malformed"),
        ("None", "siret.malformed"),
        ("null", "siret.malformed"),
        ("3560000000004", "siret.malformed"),  # 13 digits
        ("356000000000481", "siret.malformed"),  # 15 digits
        ("3560000000004X", "siret.malformed"),
        ("356.000.000.00048", "siret.malformed"),
        ("73282932000075", "siret.bad_checksum"),
        ("35600000000049", "siret.bad_checksum"),  # La Poste, digit sum 27
        ("35600000000014", "siret.bad_checksum"),  # La Poste, digit sum 19
        # Passes Luhn over 14 digits, but its SIREN 552081318 fails its own check.
        ("55208131800016", "siret.bad_checksum"),
    ],
)
def test_malformed_sirets(raw: str, code: str) -> None:
    expect_error(parse_siret, raw, code)


def test_siret_with_checksum_rejects_bad_prefixes() -> None:
    with pytest.raises(InvalidIdentifierError) as caught:
        siret_with_checksum("552081317000")
    assert caught.value.code == "siret.malformed"
    with pytest.raises(InvalidIdentifierError) as caught:
        siret_with_checksum("5520813180001")
    assert caught.value.code == "siret.bad_checksum"


# --- the error itself -----------------------------------------------------------------------


def test_error_is_a_value_error_and_survives_pickling() -> None:
    error = expect_error(parse_nir, "184127645108947", "nir.bad_key")
    assert isinstance(error, ValueError)
    assert error.reason == "the NIR key does not match its number"
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own object
    assert (copy.kind, copy.code, copy.reason) == (error.kind, error.code, error.reason)


def test_issued_tokens_never_look_like_a_nir() -> None:
    made = iter(["gw-5fa622545785437388d4b7ec", "gw-5fabcdefabcdefabcdefabcd"])
    assert token_not_nir_shaped(lambda: next(made)) == "gw-5fabcdefabcdefabcdefabcd"
