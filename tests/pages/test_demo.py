"""`load_demo` builds the demo county through the services, once; the ledger it writes verifies."""

import io

import pytest
from django.core.management import call_command

from accounting.models import AccountingRun
from geo.models import Parcel, Raster
from ledger.demo import COLLECTIVE, COMPANY, land_cover
from ledger.models import Asset, Entry, Pledge
from ledger.registry.uscc import uscc_validate


def test_demo_land_cover_is_reproducible_and_varied():
    first, second = land_cover()
    again, _ = land_cover()
    assert (first == again).all()
    shares = {code: (first == code).mean() for code in (1, 2, 3, 4, 5, 8)}
    assert 0.45 < shares[2] < 0.8, shares  # forest dominates, as in Pingwu
    assert all(share > 0.002 for share in shares.values()), shares
    assert (second != first).any()


def test_demo_parties_carry_valid_codes():
    for _, _, code in (COLLECTIVE, COMPANY):
        assert uscc_validate(code) == code


@pytest.mark.django_db(transaction=True)
def test_load_demo_once_then_nothing_and_the_ledger_verifies():
    out = io.StringIO()
    call_command("load_demo", stdout=out)
    text = out.getvalue()
    assert "loaded in" in text
    for username in ("pingwu-bureau", "demo-bank", "demo-exchange", "demo-auditor"):
        assert username in text
    assert Raster.objects.count() == 2
    assert Parcel.objects.filter(county_code="510727").count() >= 250
    run = AccountingRun.objects.get()
    assert run.status == AccountingRun.SUCCEEDED and run.totals["stock_tC"] > 0
    assert Asset.objects.filter(status=Asset.CONFIRMED, valuation__isnull=False).count() >= 20
    assert Pledge.objects.filter(status=Pledge.ACTIVE).count() == 1
    entries = Entry.objects.count()

    again = io.StringIO()
    call_command("load_demo", stdout=again)
    assert "already loaded" in again.getvalue()
    assert Entry.objects.count() == entries

    verified = io.StringIO()
    call_command("verify_ledger", stdout=verified)
    assert "ledger OK" in verified.getvalue()
