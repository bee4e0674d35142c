"""Small GeoTIFF writers for tests."""

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
