"""Parties and the GB 32100-2015 check character of unified social credit codes."""

import pytest

from ledger.models import Entry, Party
from ledger.registry.uscc import ALPHABET, WEIGHTS, USCCError, uscc_check_character, uscc_validate


def test_check_character_of_the_standards_example_by_hand():
    """91350100M000100Y4? : Σ value × weight over the first 17 characters, then 31 − Σ mod 31."""
    code = "91350100M000100Y4"
    values = [9, 1, 3, 5, 0, 1, 0, 0, 21, 0, 0, 0, 1, 0, 0, 30, 4]  # M is 21, Y is 30 in the 31-letter alphabet
    assert [ALPHABET.index(c) for c in code] == values
    total = 9*1 + 1*3 + 3*9 + 5*27 + 0*19 + 1*26 + 0*16 + 0*17 + 21*20 + 0*29 + 0*25 + 0*13 + 1*8 + 0*24 + 0*10 \
        + 30*30 + 4*28
    assert total == 1640 and 1640 % 31 == 28 and 31 - 28 == 3
    assert uscc_check_character(code) == "3"


def test_weights_are_powers_of_three_mod_31():
    assert list(WEIGHTS) == [pow(3, i, 31) for i in range(17)]


@pytest.mark.parametrize("code", [
    "91350100M000100Y43",  # the example code printed in GB 32100-2015
    "9144030071526726XG",  # Tencent Technology (Shenzhen) Co., Ltd.
    "914403001922038216",  # Huawei Technologies Co., Ltd.
    "91110000802100433B",  # Beijing Baidu Netcom Science and Technology Co., Ltd.
])
def test_published_codes_validate(code):
    assert uscc_validate(code.lower()) == code


def test_a_remainder_of_zero_gives_check_character_zero():
    """31 − 0 = 31 is written 0: find a 17-character body whose weighted sum is a multiple of 31."""
    body = "9111000000000000" + "0"
    total = sum(ALPHABET.index(c) * w for c, w in zip(body, WEIGHTS, strict=True))
    for last in ALPHABET:
        if (total + ALPHABET.index(last) * WEIGHTS[16]) % 31 == 0:
            assert uscc_check_character(body[:16] + last) == "0"
            break
    else:
        pytest.fail("no 17th character gives a multiple of 31")


@pytest.mark.parametrize(("code", "want"), [
    ("91350100M000100Y44", "expected_check_character"),
    ("91350100M000100Y4", "length"),
    ("91350100M000100I43", "position"),
])
def test_bad_codes_are_refused(code, want):
    with pytest.raises(USCCError) as caught:
        uscc_validate(code)
    assert want in caught.value.extensions


@pytest.mark.django_db
def test_post_party_with_a_wrong_check_character_is_422_naming_the_expected_one(api_user):
    _, bureau = api_user("bureau")
    response = bureau.post("/api/parties/", {"kind": "company", "name": "Tencent", "uscc": "9144030071526726X0"},
                           format="json")
    assert response.status_code == 422
    body = response.json()
    assert response["Content-Type"] == "application/problem+json"
    assert body["expected_check_character"] == "G" and body["got_check_character"] == "0"
    assert "want 'G'" in body["detail"]
    assert Party.objects.count() == 0 and Entry.objects.count() == 0


@pytest.mark.django_db
def test_post_and_list_parties_records_each_on_the_ledger(api_user):
    _, bureau = api_user("bureau")
    created = bureau.post("/api/parties/", {"kind": "collective", "name": "Guanba village collective",
                                            "uscc": "91350100m000100y43"}, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["uscc"] == "91350100M000100Y43"
    household = bureau.post("/api/parties/", {"kind": "household", "name": "Wang household"}, format="json")
    assert household.status_code == 201 and household.json()["uscc"] is None
    entries = list(Entry.objects.order_by("seq").values_list("kind", "payload"))
    assert entries == [
        ("party.create", {"party": created.json()["id"], "kind": "collective", "name": "Guanba village collective",
                          "uscc": "91350100M000100Y43"}),
        ("party.create", {"party": household.json()["id"], "kind": "household", "name": "Wang household",
                          "uscc": None}),
    ]
    listing = bureau.get("/api/parties/").json()
    assert [p["name"] for p in listing["results"]] == ["Guanba village collective", "Wang household"]


@pytest.mark.django_db
@pytest.mark.parametrize(("body", "status"), [
    ({"kind": "company", "name": "No code"}, 422),
    ({"kind": "household", "name": "Li household", "uscc": "91350100M000100Y43"}, 422),
    ({"kind": "company", "name": "", "uscc": "91350100M000100Y43"}, 400),
    ({"kind": "temple", "name": "X"}, 400),
])
def test_bad_parties_change_nothing(api_user, body, status):
    _, bureau = api_user("bureau")
    response = bureau.post("/api/parties/", body, format="json")
    assert response.status_code == status, response.json()
    assert Party.objects.count() == 0 and Entry.objects.count() == 0


@pytest.mark.django_db
def test_a_bank_registers_only_its_own_bank_party_and_the_auditor_none(api_user):
    bank_user, bank = api_user("bank")
    _, auditor = api_user("auditor")
    assert bank.post("/api/parties/", {"kind": "company", "name": "X", "uscc": "91350100M000100Y43"},
                     format="json").status_code == 403
    assert auditor.post("/api/parties/", {"kind": "company", "name": "X", "uscc": "91350100M000100Y43"},
                        format="json").status_code == 403
    assert Party.objects.count() == 0 and Entry.objects.count() == 0
    ok = bank.post("/api/parties/", {"kind": "bank", "name": "Bank A", "uscc": "914403001922038216"}, format="json")
    assert ok.status_code == 201
    assert Party.objects.get(id=ok.json()["id"]).user == bank_user
    again = bank.post("/api/parties/", {"kind": "bank", "name": "Bank A2", "uscc": "91110000802100433B"},
                      format="json")
    assert again.status_code == 422 and Party.objects.count() == 1
