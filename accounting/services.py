"""What the accounting app does: publish method versions, queue runs, execute them.

A run is queued with a row of the app's outbox in the same transaction, so its task is published once the run
commits, or later by the sweep when the broker was down (accounting.outbox). An execution claims the run under a
row lock (status `running`, the next `attempt` number) and then beats (`heartbeat_at`) while it computes; a task
for a run that another execution holds does nothing, and one for a finished run returns it unchanged. A run whose
holder stopped beating for RUN_STALE_AFTER_S (its worker was killed) is queued again by the sweep
`accounting_runs_requeue_stale`, and the next execution takes it over.

A run's results are written once, in one transaction, together with its status, and only by the execution that
holds it: one that lost its claim meanwhile writes nothing. A failed run keeps no partial results.
"""

import logging
import time
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Max, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext_noop

from accounting.engine import RunInputs, account_parcels
from accounting.methods import default_tables_sha256
from accounting.methods.errors import MethodError
from accounting.methods.spec import method_parameters_hash, validate_method_parameters
from accounting.methods.valuation import ValuationTerms
from accounting.models import AccountingRun, MethodVersion, Outbox, ParcelResult
from accounting.outbox import outbox_add
from config.common.version import code_version
from geo.errors import TranslatableError
from geo.legends import legend_from_snapshot
from geo.models import Parcel, Raster

log = logging.getLogger(__name__)
RUN_EXECUTE_TASK = "accounting.run_execute"
RUNS_REQUEUE_TASK = "accounting.runs_requeue_stale"
OUTBOX_SEND_TASK = "accounting.outbox_send_pending"
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
        # The task by name, so that this module need not import the task module that imports it.
        outbox_add(Outbox, task=RUN_EXECUTE_TASK, args=[run.id], key=_run_key(run.id))
    return run


def _run_key(run_id: int) -> str:
    return f"run:{run_id}"


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


class _Beat:
    """The holder's signs of life: progress and heartbeat, written at most every PROGRESS_EVERY_S (progress) and
    RUN_HEARTBEAT_S (heartbeat alone), and only while this execution (`attempt`) still holds the run."""

    def __init__(self, run: AccountingRun):
        self.run_id, self.attempt, self.parcels_total = run.id, run.attempt, run.parcels_total
        self.last_progress = self.last_beat = time.monotonic()

    def _write(self, **fields) -> None:
        AccountingRun.objects.filter(id=self.run_id, attempt=self.attempt, status=AccountingRun.RUNNING).update(
            heartbeat_at=timezone.now(), **fields)
        self.last_beat = time.monotonic()

    def progress(self, done: int, total: int) -> None:
        """`done` of `total` strips read; a job with no strip to read (no parcel reaches a pixel) is done."""
        now = time.monotonic()
        if now - self.last_progress >= PROGRESS_EVERY_S or done == total:
            self.last_progress = now
            parcels_done = round(done / total * self.parcels_total) if total else self.parcels_total
            self._write(parcels_done=parcels_done)

    def beat(self, *_) -> None:
        if time.monotonic() - self.last_beat >= settings.RUN_HEARTBEAT_S:
            self._write()


def _holder_stopped(run: AccountingRun, take_over: int | None, seen_heartbeat: str | None) -> bool:
    """Whether the execution holding running `run` is the one the sweep found silent (attempt `take_over`,
    last heartbeat `seen_heartbeat`) and has not beaten since."""
    if take_over is None or take_over != run.attempt:
        return False
    if seen_heartbeat is None:  # a run started before heartbeats were recorded
        return run.heartbeat_at is None
    return run.heartbeat_at is not None and run.heartbeat_at <= datetime.fromisoformat(seen_heartbeat)


def accounting_run_execute(*, run_id: int, take_over: int | None = None,
                           seen_heartbeat: str | None = None) -> AccountingRun:
    """Compute run `run_id` and store its results and totals in one transaction; on failure store the reason.

    Idempotent: a run that already succeeded or failed is returned unchanged, and so is a running one, unless
    this is the sweep's take-over of the execution numbered `take_over`, silent since `seen_heartbeat`
    (ISO 8601) and still silent.
    """
    with transaction.atomic():
        run = AccountingRun.objects.select_for_update().get(id=run_id)
        if run.status in (AccountingRun.SUCCEEDED, AccountingRun.FAILED):
            return run
        if run.status == AccountingRun.RUNNING:
            if not _holder_stopped(run, take_over, seen_heartbeat):
                log.info("run %s is held by execution %s (heartbeat %s): nothing to do", run_id, run.attempt,
                         run.heartbeat_at)
                return run
            log.warning("run %s: execution %s stopped at %s; taking it over", run_id, run.attempt, run.heartbeat_at)
        run.status, run.started_at, run.parcels_done = AccountingRun.RUNNING, timezone.now(), 0
        run.attempt, run.heartbeat_at = run.attempt + 1, run.started_at
        run.code_version, run.default_tables_sha256 = code_version(), default_tables_sha256()
        run.save(update_fields=["status", "started_at", "parcels_done", "attempt", "heartbeat_at", "code_version",
                                "default_tables_sha256"])
    beat = _Beat(run)

    try:
        outcome = account_parcels(_run_inputs(run), on_progress=beat.progress, on_parcel=beat.beat)
    except (MethodError, ValueError, OSError) as exc:
        return _fail(run_id, beat.attempt, f"{type(exc).__name__}: {exc}")
    except Exception as exc:
        log.exception("run %s failed unexpectedly", run_id)
        _fail(run_id, beat.attempt, f"internal error: {type(exc).__name__}: {exc}")
        raise

    with transaction.atomic():
        run = AccountingRun.objects.select_for_update().get(id=run_id)
        if run.status != AccountingRun.RUNNING or run.attempt != beat.attempt:
            log.warning("run %s: execution %s lost its claim (now %s, execution %s); its results are dropped",
                        run_id, beat.attempt, run.status, run.attempt)
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
        run.heartbeat_at = run.finished_at
        run.save(update_fields=["totals", "status", "finished_at", "parcels_done", "heartbeat_at"])
    return run


def _fail(run_id: int, attempt: int, reason: str) -> AccountingRun:
    with transaction.atomic():
        run = AccountingRun.objects.select_for_update().get(id=run_id)
        if run.status != AccountingRun.RUNNING or run.attempt != attempt:
            return run  # another execution holds it now; its outcome stands
        ParcelResult.objects.filter(run=run).delete()
        run.status, run.failure_reason, run.finished_at = AccountingRun.FAILED, reason[:4000], timezone.now()
        run.save(update_fields=["status", "failure_reason", "finished_at"])
    return run


def accounting_runs_requeue_stale(*, now: datetime | None = None) -> list[int]:
    """Queue again (through the outbox) every run whose work was lost; return their ids.

    - `running`, with no heartbeat for RUN_STALE_AFTER_S: its worker died (killed, out of memory, machine
      lost). The task names the silent execution, and takes the run over only if it is still silent.
    - `queued`, with nothing waiting in the outbox and its last task published more than RUN_STALE_AFTER_S ago
      (or never): the message was lost, e.g. by a broker that restarted empty, or by an in-process runner whose
      process ended. If it was only waiting behind other runs, the second message finds the run taken and does
      nothing.
    """
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.RUN_STALE_AFTER_S)
    requeued = []
    silent = AccountingRun.objects.filter(Q(heartbeat_at__lt=stale) | Q(heartbeat_at__isnull=True),
                                          status=AccountingRun.RUNNING)
    for run in silent.order_by("id"):
        args = [run.id, run.attempt, run.heartbeat_at.isoformat() if run.heartbeat_at else None]
        if outbox_add(Outbox, task=RUN_EXECUTE_TASK, args=args, key=_run_key(run.id)) is not None:
            log.warning("run %s: execution %s silent since %s; queued again", run.id, run.attempt, run.heartbeat_at)
            requeued.append(run.id)
    for run in AccountingRun.objects.filter(status=AccountingRun.QUEUED, created_at__lt=stale).order_by("id"):
        rows = Outbox.objects.filter(key=_run_key(run.id))
        if rows.filter(sent_at__isnull=True).exists():
            continue  # the outbox still holds it: it goes out when the broker answers
        last_sent = rows.aggregate(last=Max("sent_at"))["last"]
        if (last_sent is None or last_sent < stale) and outbox_add(Outbox, task=RUN_EXECUTE_TASK, args=[run.id],
                                                                   key=_run_key(run.id)) is not None:
            log.warning("run %s: queued, its task last sent %s; sent again", run.id, last_sent)
            requeued.append(run.id)
    return requeued
