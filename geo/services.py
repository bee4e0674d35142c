"""What the geo app does: ingest rasters, import parcels. Each service is one transaction; a refusal leaves
no row and no file behind."""

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction

from geo.errors import (
    CountyScopeError,
    DuplicateParcelError,
    RasterConflictError,
    RasterError,
    RasterTooLargeError,
    TranslatableMessage,
    gettext_noop,
    joined_message,
    parcel_problem,
)
from geo.legends import Legend
from geo.models import Parcel, Raster
from geo.parcels import parse_feature_collection
from geo.rasters import inspect_raster, normalise_raster, sha256_file
from geo.scratch import scratch_dir

RASTER_FOLDER = "rasters"


def raster_ingest(*, source_path: str | os.PathLike, original_name: str, epoch: int, legend: Legend,
                  band: int | None = None, uploaded_by=None) -> tuple[Raster, bool]:
    """Validate and register the land-cover raster at `source_path`; return (raster, created).

    The same bytes uploaded twice are one raster: the second call returns the first (created=False), unless
    it names another epoch, legend or band (RasterConflictError). Faults raise RasterError before anything
    is written; the normalised copy is stored as MEDIA_ROOT/rasters/<sha256>.tif, and its own sha256 (what runs
    read) as `normalised_sha256`. Only a GeoTIFF opens (`geo.geotiff`), and its declared size is checked against
    MAX_RASTER_PIXELS before a pixel is read. Scratch files (this process's folder under MEDIA_ROOT/tmp, one file
    system with the final place) are removed on every path.
    """
    size_bytes = os.path.getsize(source_path)
    limit = settings.MAX_RASTER_BYTES
    if size_bytes > limit:
        raise RasterTooLargeError(size_bytes, limit)
    if not 1900 <= epoch <= 2100:
        raise RasterError(gettext_noop("epoch must be a year between 1900 and 2100; got %(epoch)s"), epoch=epoch)
    digest = sha256_file(source_path)
    existing = Raster.objects.filter(sha256=digest).first()
    if existing is not None:
        return _same_raster(existing, epoch=epoch, legend=legend, band=band), False

    facts = inspect_raster(source_path, legend=legend, band=band, max_pixels=settings.MAX_RASTER_PIXELS)
    relative = f"{RASTER_FOLDER}/{digest}.tif"
    final_path = Path(settings.MEDIA_ROOT) / relative
    fd, tmp_name = tempfile.mkstemp(suffix=".tif", dir=scratch_dir())
    os.close(fd)
    try:
        normalise_raster(source_path, tmp_name, band=facts.band)
        normalised_digest = sha256_file(tmp_name)  # the bytes every run reads, checked before each read
        final_path.parent.mkdir(parents=True, exist_ok=True)
        with transaction.atomic():
            raster = Raster.objects.create(
                sha256=digest, file=relative, normalised_sha256=normalised_digest, original_name=original_name[:255],
                size_bytes=size_bytes, epoch=epoch,
                legend=legend.to_json(), band=facts.band, width=facts.width, height=facts.height, dtype=facts.dtype,
                nodata=facts.nodata, crs_wkt=facts.crs_wkt, epsg=facts.epsg, transform=list(facts.transform),
                class_pixel_counts={str(k): v for k, v in facts.class_pixel_counts.items()}, uploaded_by=uploaded_by,
            )
            # If the commit fails after this rename, the except clause below removes the file again.
            os.replace(tmp_name, final_path)
    except IntegrityError:
        # Another request registered the same bytes first.
        _remove(tmp_name)
        existing = Raster.objects.get(sha256=digest)
        return _same_raster(existing, epoch=epoch, legend=legend, band=band), False
    except BaseException:
        _remove(tmp_name)
        if not Raster.objects.filter(sha256=digest).exists():
            _remove(final_path)
        raise
    return raster, True


def _same_raster(existing: Raster, *, epoch: int, legend: Legend, band: int | None) -> Raster:
    differences = []
    if existing.epoch != epoch:
        differences.append(TranslatableMessage(gettext_noop("epoch %(stored)s, not %(given)s"), stored=existing.epoch,
                                               given=epoch))
    if existing.legend.get("name") != legend.name:
        differences.append(TranslatableMessage(gettext_noop("legend %(stored)s, not %(given)s"),
                                               stored=repr(existing.legend.get("name")), given=repr(legend.name)))
    if band is not None and existing.band != band:
        differences.append(TranslatableMessage(gettext_noop("band %(stored)s, not %(given)s"), stored=existing.band,
                                               given=band))
    if differences:
        raise RasterConflictError(gettext_noop("these bytes are already raster %(raster_id)s with %(differences)s"),
                                  raster_id=existing.id, differences=joined_message(gettext_noop(" and "), differences),
                                  extensions={"raster_id": existing.id})
    return existing


def _remove(path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


def parcel_import(*, feature_collection, crs: str | None = None, allowed_county: str | None = None) -> list[Parcel]:
    """Import every feature of a GeoJSON FeatureCollection as a parcel, all or nothing.

    `allowed_county`, when given, is the only county the caller may import into (a bureau's own).
    Raises ParcelError listing every bad feature, DuplicateParcelError (409) for codes already used in their
    county, and CountyScopeError for features of another county.
    """
    drafts = parse_feature_collection(feature_collection, crs=crs)
    if allowed_county is not None:
        foreign = sorted({d.county_code for d in drafts if d.county_code != allowed_county})
        if foreign:
            raise CountyScopeError(gettext_noop("a bureau of county %(county)s cannot import parcels of county "
                                                "%(foreign)s"), county=allowed_county, foreign=", ".join(foreign),
                                   extensions={})
    source_crs = crs or "EPSG:4326"
    with transaction.atomic():
        taken = _taken_codes(drafts)
        if taken:
            raise DuplicateParcelError([_code_taken(d) for d in drafts if (d.county_code, d.code) in taken])
        parcels = [
            Parcel(county_code=d.county_code, code=d.code, name=d.name, attributes=d.attributes,
                   geometry=d.geometry_geojson, min_lon=d.bounds_lonlat[0], min_lat=d.bounds_lonlat[1],
                   max_lon=d.bounds_lonlat[2], max_lat=d.bounds_lonlat[3], area_ha=d.area_ha, source_crs=source_crs)
            for d in drafts
        ]
        try:
            with transaction.atomic():
                created = Parcel.objects.bulk_create(parcels, batch_size=500)
        except IntegrityError:
            # A concurrent import took one of the codes between the check and the insert.
            taken = _taken_codes(drafts)
            raise DuplicateParcelError(
                [_code_taken(d) for d in drafts if (d.county_code, d.code) in taken]
                or [parcel_problem(None, None, gettext_noop("a parcel code was taken concurrently"))]) from None
    return created


def _code_taken(draft) -> dict:
    return parcel_problem(draft.index, draft.code, gettext_noop("parcel code %(code)s already exists in county "
                                                                "%(county)s"), code=repr(draft.code),
                          county=draft.county_code, pointer=f"#/features/{draft.index}/properties/code")


def _taken_codes(drafts) -> set[tuple[str, str]]:
    by_county: dict[str, list[str]] = {}
    for d in drafts:
        by_county.setdefault(d.county_code, []).append(d.code)
    taken = set()
    for county, codes in by_county.items():
        for start in range(0, len(codes), 500):
            taken.update(Parcel.objects.filter(county_code=county, code__in=codes[start:start + 500])
                         .values_list("county_code", "code"))
    return taken


@contextlib.contextmanager
def upload_on_disk(uploaded_file) -> Iterator[str]:
    """The path of a Django UploadedFile's bytes on disk for the block: the file Django streamed it to (in this
    process's scratch folder, `geo.scratch.ScratchFileUploadHandler`), or, for a small upload held in memory, a
    copy in that folder, removed when the block ends, however it ends."""
    if hasattr(uploaded_file, "temporary_file_path"):
        uploaded_file.file.flush()
        yield uploaded_file.temporary_file_path()
        return
    fd, name = tempfile.mkstemp(suffix=Path(uploaded_file.name or "").suffix[:16] or ".tif", dir=scratch_dir())
    try:
        with os.fdopen(fd, "wb") as out:
            uploaded_file.seek(0)
            shutil.copyfileobj(uploaded_file, out)
        yield name
    finally:
        _remove(name)
