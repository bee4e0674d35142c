"""Small GeoTIFF writers for tests, and a measure of what a hostile input costs."""

import json
import os
import re
import time
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import Affine


def write_tif(path: Path, array: np.ndarray, *, crs="EPSG:32648", transform=None, nodata=None, **profile) -> Path:
    """Write `array` (rows, cols) or (bands, rows, cols) as a GeoTIFF and return its path."""
    data = array if array.ndim == 3 else array[np.newaxis]
    options = {
        "driver": "GTiff", "width": data.shape[2], "height": data.shape[1], "count": data.shape[0],
        "dtype": data.dtype.name,
        "transform": transform if transform is not None else Affine(10, 0, 400_000, 0, -10, 3_600_000),
    }
    if crs is not None:
        options["crs"] = crs
    if nodata is not None:
        options["nodata"] = nodata
    options.update(profile)
    with rasterio.open(path, "w", **options) as out:
        out.write(data)
    return path


def media_files(media_root) -> list[str]:
    """Every file under MEDIA_ROOT, relative and sorted: shows that a refused upload left nothing behind."""
    root = Path(media_root)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def _rss_kib(field: str) -> int:
    return int(re.search(rf"{field}:\s+(\d+) kB", Path("/proc/self/status").read_text()).group(1))


def measured(case: str, action):
    """Run `action()`, and report how long it took and the process's peak resident memory meanwhile (VmHWM, reset
    first through /proc/self/clear_refs, so the peak is this action's), as facts: nothing here is asserted. Printed
    (pytest -s), and appended as a JSON line to the file HOSTILE_UPLOADS_REPORT names, if set (docs/reliability.md,
    "Hostile uploads"). Warm the process up first, or the first request's set-up is measured too."""
    try:
        Path("/proc/self/clear_refs").write_text("5")  # reset the peak to the current resident size
        before = _rss_kib("VmRSS")
    except OSError:
        before = None
    started = time.perf_counter()
    result = action()
    seconds = time.perf_counter() - started
    fact = {"case": case, "seconds": round(seconds, 4)}
    if before is not None:
        peak = _rss_kib("VmHWM")
        fact |= {"peak_rss_mib": round(peak / 1024, 1), "growth_mib": round((peak - before) / 1024, 1)}
    print(f"\nhostile upload {json.dumps(fact)}")
    report = os.environ.get("HOSTILE_UPLOADS_REPORT")
    if report:
        with open(report, "a") as out:
            out.write(json.dumps(fact) + "\n")
    return result
