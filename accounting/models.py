from django.conf import settings
from django.db import models
from django.utils.translation import gettext_noop

from accounting.outbox import OutboxMessage
from geo.errors import TranslatableError
from geo.models import Parcel, Raster


class ImmutableError(TranslatableError):
    """A published method version, or a finished result, cannot change."""

    http_status = 409
    problem_slug = "immutable"
    problem_title = gettext_noop("Cannot change a published record")


class MethodVersion(models.Model):
    """A carbon method kind with its parameters: immutable, addressed by the sha256 of its canonical JSON."""

    kind = models.CharField(max_length=32)
    parameters = models.JSONField()
    parameters_sha256 = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.parameters_sha256[:12]}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ImmutableError(gettext_noop("method version %(id)s is published and never changes; post a new "
                                              "version"), id=self.pk)
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ImmutableError(gettext_noop("method version %(id)s is published and is never deleted"), id=self.pk)


class AccountingRun(models.Model):
    QUEUED, RUNNING, SUCCEEDED, FAILED = "queued", "running", "succeeded", "failed"
    STATUSES = [(s, s) for s in (QUEUED, RUNNING, SUCCEEDED, FAILED)]
    APPROACH_1, APPROACH_2 = "approach1", "approach2"

    status = models.CharField(max_length=16, choices=STATUSES, default=QUEUED, db_index=True)
    failure_reason = models.TextField(blank=True)
    method_version = models.ForeignKey(MethodVersion, on_delete=models.PROTECT, related_name="runs")
    raster = models.ForeignKey(Raster, on_delete=models.PROTECT, related_name="runs")
    alt_raster = models.ForeignKey(Raster, null=True, blank=True, on_delete=models.PROTECT, related_name="alt_runs")
    start_year = models.PositiveSmallIntegerField(null=True, blank=True)
    end_year = models.PositiveSmallIntegerField(null=True, blank=True)
    parcels = models.ManyToManyField(Parcel, related_name="+")
    county_code = models.CharField(max_length=6, blank=True)
    # Valuation, when asked: price per t C (as InVEST prices carbon), rates in percent.
    price_per_t_c = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    discount_rate_pct = models.DecimalField(max_digits=7, decimal_places=4, null=True, blank=True)
    price_change_pct = models.DecimalField(max_digits=7, decimal_places=4, null=True, blank=True)
    uncertainty_approach = models.CharField(max_length=16, default=APPROACH_1)
    seed = models.BigIntegerField(default=20260101)
    # Reproducibility: what this run read, and which code computed it. Each list holds the raster, then the
    # alt_raster: the sha256 of its upload, and of its normalised copy (the bytes the engine reads).
    input_raster_sha256 = models.JSONField(default=list)
    normalised_raster_sha256 = models.JSONField(default=list, help_text="sha256 of each raster's normalised "
                                                                        "copy, the bytes the run read, in the same "
                                                                        "order; empty for runs queued before it "
                                                                        "was recorded")
    method_sha256 = models.CharField(max_length=64)
    # The shipped IPCC default tables a method may read are not in its parameters: hash them too.
    default_tables_sha256 = models.CharField(max_length=64, blank=True)
    code_version = models.CharField(max_length=80, blank=True)
    parcels_total = models.PositiveIntegerField(default=0)
    parcels_done = models.PositiveIntegerField(default=0)
    totals = models.JSONField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Who holds a running run: executions are numbered (1 for the first; one more for each that takes over a run
    # whose worker died), and the holder beats at least every RUN_HEARTBEAT_S. Only the holder writes results.
    attempt = models.PositiveIntegerField(default=0, help_text="the execution that holds the run (0: none yet)")
    heartbeat_at = models.DateTimeField(null=True, blank=True, help_text="the holder's last sign of life")

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"run {self.id} ({self.status})"


class ParcelResult(models.Model):
    """One parcel's figures in one run. Written once, all results of a run in one transaction."""

    run = models.ForeignKey(AccountingRun, on_delete=models.CASCADE, related_name="results")
    parcel = models.ForeignKey(Parcel, on_delete=models.PROTECT, related_name="results")
    area_ha = models.FloatField(help_text="geodesic area of the parcel")
    stock_t_c = models.FloatField()
    stock_co2e_t = models.FloatField()
    stock_ci95_low_t_c = models.FloatField()
    stock_ci95_high_t_c = models.FloatField()
    figures = models.JSONField(help_text="class areas, pools, change, value: the full result")

    class Meta:
        ordering = ["run", "parcel_id"]
        constraints = [models.UniqueConstraint(fields=["run", "parcel"], name="one_result_per_parcel_per_run")]

    def __str__(self) -> str:
        return f"run {self.run_id} parcel {self.parcel_id}: {self.stock_t_c:.3f} t C"


class Outbox(OutboxMessage):
    """Tasks of the accounting app to publish after their transaction commits (accounting.outbox)."""

    class Meta(OutboxMessage.Meta):
        db_table = "accounting_outbox"
