"""The rights registry's tables: parties, assets, valuations, pledges, transfers, retirements (projections of the
ledger), and the bookkeeping beside them (serial counters, idempotency keys).

Projection rows change only through `ledger.registry.services`, each change in the same transaction as the ledger entry
that records it; `ledger.core.replay` rebuilds them from the entries and `verify_ledger` compares.
"""

from django.conf import settings
from django.db import models

from accounting.models import AccountingRun, ParcelResult
from geo.models import Parcel
from ledger.core import replay

__all__ = ["Asset", "AssetSerialCounter", "IdempotencyRecord", "Party", "Pledge", "Retirement", "Transfer", "Valuation"]


class Party(models.Model):
    """A rights holder, bank, exchange or bureau. Organisations carry their unified social credit code."""

    COLLECTIVE, COMPANY, HOUSEHOLD, INDIVIDUAL = "collective", "company", "household", "individual"
    BANK, EXCHANGE, BUREAU = "bank", "exchange", "bureau"
    KINDS = (COLLECTIVE, COMPANY, HOUSEHOLD, INDIVIDUAL, BANK, EXCHANGE, BUREAU)
    ORGANISATIONS = (COLLECTIVE, COMPANY, BANK, EXCHANGE, BUREAU)
    HOLDER_KINDS = (COLLECTIVE, COMPANY, HOUSEHOLD, INDIVIDUAL)  # who may hold an asset's rights

    kind = models.CharField(max_length=16, choices=[(k, k) for k in KINDS])
    name = models.CharField(max_length=200)
    uscc = models.CharField(max_length=18, null=True, blank=True, unique=True,
                            help_text="unified social credit code (GB 32100-2015), organisations only")
    user = models.OneToOneField(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                related_name="registry_party", help_text="the API user acting for this party")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "registry_party"
        ordering = ["id"]
        verbose_name_plural = "parties"

    def __str__(self):
        return f"party {self.id} {self.name}"


class AssetSerialCounter(models.Model):
    """The last sequence number given in one county and year; locked FOR UPDATE while a code is allocated."""

    county_code = models.CharField(max_length=6)
    year = models.PositiveSmallIntegerField()
    last_sequence = models.PositiveIntegerField(default=0)

    class Meta:
        db_table = "registry_serial_counter"
        constraints = [models.UniqueConstraint(fields=["county_code", "year"], name="registry_one_counter")]

    def __str__(self):
        return f"{self.county_code}-{self.year}: {self.last_sequence}"


class AssetQuerySet(models.QuerySet):
    def with_status(self, status: str) -> "AssetQuerySet":
        """Assets in `status`, or with an active pledge for "pledged" (not a status of its own: a pledged asset
        is confirmed). The API's and the pages' status filter."""
        if status == Asset.PLEDGED:
            return self.filter(pledges__status=Pledge.ACTIVE).distinct()
        return self.filter(status=status)


class Asset(models.Model):
    """A parcel registered as an ecological asset, e.g. 510727-2026-000123 (county, year, sequence)."""

    REGISTERED, CONFIRMED, RETIRED = replay.REGISTERED, replay.CONFIRMED, replay.RETIRED  # one spelling for all
    STATUSES = (REGISTERED, CONFIRMED, RETIRED)
    PLEDGED = "pledged"  # a filter, not a status: confirmed with an active pledge
    STATUS_FILTERS = (*STATUSES, PLEDGED)
    RIGHTS_TYPES = ("forest_land_ownership", "forest_land_use", "forest_tree_ownership", "forest_tree_use",
                    "grassland_contract")

    code = models.CharField(max_length=32, unique=True)
    county_code = models.CharField(max_length=6, db_index=True)
    year = models.PositiveSmallIntegerField()
    sequence = models.PositiveIntegerField()
    parcel = models.ForeignKey(Parcel, on_delete=models.PROTECT, related_name="assets")
    rights_type = models.CharField(max_length=32, choices=[(r, r) for r in RIGHTS_TYPES])
    holder = models.ForeignKey(Party, on_delete=models.PROTECT, related_name="assets")
    evidence = models.JSONField(default=list, help_text='[{"name": ..., "sha256": ...}] of documents and imagery')
    status = models.CharField(max_length=16, choices=[(s, s) for s in STATUSES], default=REGISTERED,
                              db_index=True)
    valuation = models.ForeignKey("Valuation", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    registered_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL,
                                      related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)

    objects = AssetQuerySet.as_manager()

    class Meta:
        db_table = "registry_asset"
        ordering = ["county_code", "year", "sequence"]
        constraints = [models.UniqueConstraint(fields=["county_code", "year", "sequence"],
                                               name="registry_asset_serial_unique")]

    def __str__(self):
        return f"asset {self.code}"


class Valuation(models.Model):
    """An accounting result attached to an asset. Stocks in t C (6 places), money at 0.01, price at 0.0001.

    The money value at the lower 95% bound is stock_ci95_low_t_c × price_amount when the price is per t C, and
    stock_ci95_low_t_c × 44/12 × price_amount when it is per t CO2e (`ledger.core.replay.valuation_money`).
    """

    PER_T_C, PER_T_CO2E = "tC", "tCO2e"

    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="valuations")
    run = models.ForeignKey(AccountingRun, on_delete=models.PROTECT, related_name="+")
    parcel_result = models.ForeignKey(ParcelResult, on_delete=models.PROTECT, related_name="+")
    method_sha256 = models.CharField(max_length=64)
    # The run's shipped default tables and the normalised raster copies it read. None: the valuation's entry
    # was written before entries carried them, and has no such key.
    default_tables_sha256 = models.CharField(max_length=64, null=True, blank=True)
    input_raster_sha256 = models.JSONField(default=list)
    normalised_raster_sha256 = models.JSONField(null=True, blank=True)
    code_version = models.CharField(max_length=80, blank=True)
    stock_t_c = models.DecimalField(max_digits=24, decimal_places=6)
    stock_co2e_t = models.DecimalField(max_digits=24, decimal_places=6)
    stock_ci95_low_t_c = models.DecimalField(max_digits=24, decimal_places=6)
    stock_ci95_high_t_c = models.DecimalField(max_digits=24, decimal_places=6)
    price_amount = models.DecimalField(max_digits=18, decimal_places=4)
    price_per = models.CharField(max_length=8, choices=[(PER_T_C, "per t C"), (PER_T_CO2E, "per t CO2e")])
    currency = models.CharField(max_length=3)
    value_amount = models.DecimalField(max_digits=24, decimal_places=2)
    value_ci95_low_amount = models.DecimalField(max_digits=24, decimal_places=2)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "registry_valuation"
        ordering = ["id"]

    def __str__(self):
        return f"valuation {self.id} of asset {self.asset_id}"


class Pledge(models.Model):
    """A lien of a bank (the pledgee) on an asset, for `amount` in `currency`."""

    ACTIVE, RELEASED, ENFORCED = replay.ACTIVE, replay.RELEASED, replay.ENFORCED
    STATUSES = (ACTIVE, RELEASED, ENFORCED)

    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="pledges")
    pledgee = models.ForeignKey(Party, on_delete=models.PROTECT, related_name="pledges")
    amount = models.DecimalField(max_digits=24, decimal_places=2)
    currency = models.CharField(max_length=3)
    term_months = models.PositiveIntegerField()
    ltv_limit_pct = models.DecimalField(max_digits=5, decimal_places=2)
    status = models.CharField(max_length=16, choices=[(s, s) for s in STATUSES], default=ACTIVE, db_index=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "registry_pledge"
        ordering = ["id"]

    def __str__(self):
        return f"pledge {self.id} on {self.asset_id} ({self.status})"


class Transfer(models.Model):
    """A settled trade: the asset passed from one holder to another."""

    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="transfers")
    from_holder = models.ForeignKey(Party, on_delete=models.PROTECT, related_name="+")
    to_holder = models.ForeignKey(Party, on_delete=models.PROTECT, related_name="+")
    trade_ref = models.CharField(max_length=100, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "registry_transfer"
        ordering = ["id"]

    def __str__(self):
        return f"transfer {self.id} of asset {self.asset_id}"


class Retirement(models.Model):
    """The asset's carbon retired for an offset claim. A retired asset does nothing more."""

    asset = models.OneToOneField(Asset, on_delete=models.PROTECT, related_name="retirement")
    holder = models.ForeignKey(Party, on_delete=models.PROTECT, related_name="+")
    beneficiary = models.CharField(max_length=200)
    reason = models.CharField(max_length=500)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "registry_retirement"

    def __str__(self):
        return f"retirement of asset {self.asset_id}"


class IdempotencyRecord(models.Model):
    """The first response to a state-changing request with an Idempotency-Key, per user."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    request_sha256 = models.CharField(max_length=64, help_text="method, path and canonical JSON body")
    response_status = models.PositiveSmallIntegerField(default=0)
    response_body = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "registry_idempotency"
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="registry_idempotency_unique")]

    def __str__(self):
        return f"idempotency key {self.key} of user {self.user_id}"
