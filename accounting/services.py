"""What the accounting app does: publish method versions, queue runs, execute them.

A run's results are written once, in one transaction, together with its status; a failed run keeps no
partial results. Executing a run that has already succeeded does nothing (a redelivered task is harmless).
"""

import logging
from decimal import Decimal

from celery import current_app
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext_noop

from accounting.engine import RunInputs, account_parcels
from accounting.methods import default_tables_sha256
from accounting.methods.errors import MethodError
from accounting.methods.spec import method_parameters_hash, validate_method_parameters
from accounting.methods.valuation import ValuationTerms
from accounting.models import AccountingRun, MethodVersion, ParcelResult
from config.common.version import code_version
from geo.errors import TranslatableError
from geo.legends import legend_from_snapshot
from geo.models import Parcel, Raster

log = logging.getLogger(__name__)
RUN_EXECUTE_TASK = "accounting.run_execute"
PROGRESS_EVERY_S = 1.0


class RunInputError(TranslatableError, ValueError):
    """A run that cannot be queued as asked; the message names the fault."""

    http_status = 422
    problem_slug = "invalid-run"
    problem_title = gettext_noop("Invalid accounting run")


def method_version_create(*, kind: str, parameters: dict, name: str = "", created_by=None) -> tuple[MethodVersion,
                                                                                                       bool]:
    """Publish `parameters` for method `kind`; return (version, created). The same parameters give the same
    version (addressed by hash), so publishing twice creates nothing."""
    normalised = validate_method_parameters(kind, parameters)
    digest = method_parameters_hash(kind, normalised)
    existing = MethodVersion.objects.filter(parameters_sha256=digest).first()
    if existing is not None:
        return existing, False
    version = MethodVersion(kind=kind, parameters=normalised, parameters_sha256=digest, name=name[:200],
                            created_by=created_by)
    version.save()
    return version, True


def accounting_run_create(*, method_version: MethodVersion, raster: Raster, parcels: QuerySet[Parcel],
                          alt_raster: Raster | None = None, years: tuple[int, int] | None = None,
                          valuation: ValuationTerms | None = None, uncertainty_approach: str = AccountingRun.APPROACH_1,
                          seed: int = 20260101, county_code: str = "", created_by=None) -> AccountingRun:
    """Queue a run over `parcels`; its task starts when this transaction commits."""
    parcel_ids = list(parcels.values_list("id", flat=True))
    if not parcel_ids:
        raise RunInputError(gettext_noop("the run has no parcels: name parcel ids or a county with parcels"))
    if alt_raster is not None and years is None:
        years = (raster.epoch, alt_raster.epoch)
    if years is not None and years[1] <= years[0]:
        raise RunInputError(gettext_noop("years must run forward: %(start_year)s to %(end_year)s"),
                            start_year=years[0], end_year=years[1], field="alt_raster")
    if valuation is not None and alt_raster is None:
        raise RunInputError(gettext_noop("valuation of a change needs an alternate raster (alt_raster) and years"),
                            field="alt_raster")
    rasters = [raster] + ([alt_raster] if alt_raster else [])
    unhashed = [r.id for r in rasters if not r.normalised_sha256]
    if unhashed:
        raise RunInputError(gettext_noop("raster %(raster)s has no recorded sha256 of its normalised copy (the copy "
                                         "was missing when the hashes were recorded), so a run could not check what "
                                         "it reads"), field="raster", raster=unhashed[0])
    with transaction.atomic():
        run = AccountingRun.objects.create(
            method_version=method_version, raster=raster, alt_raster=alt_raster,
            start_year=years[0] if years else None, end_year=years[1] if years else None,
            county_code=county_code,
            price_per_t_c=valuation.price_per_t_c if valuation else None,
            currency=valuation.currency if valuation else "",
            discount_rate_pct=valuation.discount_rate_pct if valuation else None,
            price_change_pct=valuation.price_change_pct if valuation else None,
            uncertainty_approach=uncertainty_approach, seed=seed,
            input_raster_sha256=[r.sha256 for r in rasters],
            normalised_raster_sha256=[r.normalised_sha256 for r in rasters],
            method_sha256=method_version.parameters_sha256, parcels_total=len(parcel_ids), created_by=created_by,
        )
        run.parcels.set(parcel_ids)
        # By name, so that this module need not import the task module that imports it.
        transaction.on_commit(lambda: current_app.tasks[RUN_EXECUTE_TASK].delay(run.id))
    return run


def _run_inputs(run: AccountingRun) -> RunInputs:
    parcels = list(run.parcels.order_by("id"))
    valuation = None
    if run.price_per_t_c is not None:
        valuation = ValuationTerms(price_per_t_c=run.price_per_t_c, currency=run.currency,
                                   discount_rate_pct=run.discount_rate_pct or Decimal(0),
                                   price_change_pct=run.price_change_pct or Decimal(0))
    legend = legend_from_snapshot(run.raster.legend)
    ipcc = legend.ipcc_category_by_class()
    if run.alt_raster is not None:
        ipcc = legend_from_snapshot(run.alt_raster.legend).ipcc_category_by_class() | ipcc
    # The engine refuses a file whose bytes no longer have the hash recorded when the run was queued (a run
    # queued before that hash was recorded has none, and is not checked).
    read_sha256 = list(run.normalised_raster_sha256) or [None, None]
    return RunInputs(
        raster_path=run.raster.path, alt_raster_path=run.alt_raster.path if run.alt_raster else None,
        raster_sha256=read_sha256[0], alt_raster_sha256=read_sha256[1] if run.alt_raster else None,
        geometries=[p.geometry for p in parcels], labels=[p.id for p in parcels],
        attributes=[p.attributes for p in parcels], method_kind=run.method_version.kind,
        method_parameters=run.method_version.parameters, ipcc_category_by_class=ipcc,
        years=(run.start_year, run.end_year) if run.start_year else None, valuation=valuation,
        uncertainty_approach=run.uncertainty_approach, seed=run.seed,
        parcel_keys=[f"{p.county_code}/{p.code}" for p in parcels],
    )


def accounting_run_execute(*, run_id: int) -> AccountingRun:
    """Compute run `run_id` and store its results and totals in one transaction; on failure store the reason.

    Idempotent: a run that already succeeded or failed is returned unchanged.
    """
    with transaction.atomic():
        run = AccountingRun.objects.select_for_update().get(id=run_id)
        if run.status in (AccountingRun.SUCCEEDED, AccountingRun.FAILED):
            return run
        run.status, run.started_at, run.parcels_done = AccountingRun.RUNNING, timezone.now(), 0
        run.code_version, run.default_tables_sha256 = code_version(), default_tables_sha256()
        run.save(update_fields=["status", "started_at", "parcels_done", "code_version", "default_tables_sha256"])

    last_report = [0.0]

    def on_progress(done: int, total: int) -> None:
        """`done` of `total` strips read; a job with no strip to read (no parcel reaches a pixel) is done."""
        now = timezone.now().timestamp()
        if now - last_report[0] >= PROGRESS_EVERY_S or done == total:
            last_report[0] = now
            parcels_done = round(done / total * run.parcels_total) if total else run.parcels_total
            AccountingRun.objects.filter(id=run_id).update(parcels_done=parcels_done)

    try:
        outcome = account_parcels(_run_inputs(run), on_progress=on_progress)
    except (MethodError, ValueError, OSError) as exc:
        return _fail(run_id, f"{type(exc).__name__}: {exc}")
    except Exception as exc:
        log.exception("run %s failed unexpectedly", run_id)
        _fail(run_id, f"internal error: {type(exc).__name__}: {exc}")
        raise

    with transaction.atomic():
        run = AccountingRun.objects.select_for_update().get(id=run_id)
        if run.status != AccountingRun.RUNNING:
            return run
        ParcelResult.objects.filter(run=run).delete()
        ParcelResult.objects.bulk_create([
            ParcelResult(run=run, parcel_id=r.label, area_ha=r.figures["area_ha"],
                         stock_t_c=r.figures["stock_tC"], stock_co2e_t=r.figures["stock_tCO2e"],
                         stock_ci95_low_t_c=r.figures["stock_ci95_tC"][0],
                         stock_ci95_high_t_c=r.figures["stock_ci95_tC"][1], figures=r.figures)
            for r in outcome.parcels
        ], batch_size=500)
        run.totals = outcome.totals
        run.status, run.finished_at, run.parcels_done = AccountingRun.SUCCEEDED, timezone.now(), run.parcels_total
        run.save(update_fields=["totals", "status", "finished_at", "parcels_done"])
    return run


def _fail(run_id: int, reason: str) -> AccountingRun:
    with transaction.atomic():
        run = AccountingRun.objects.select_for_update().get(id=run_id)
        ParcelResult.objects.filter(run=run).delete()
        run.status, run.failure_reason, run.finished_at = AccountingRun.FAILED, reason[:4000], timezone.now()
        run.save(update_fields=["status", "failure_reason", "finished_at"])
    return run
