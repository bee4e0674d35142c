"""Areas on the ellipsoid, in hectares. Pure: shapely geometries and numbers in, floats out."""

from pyproj import Geod
from shapely.geometry.base import BaseGeometry

# WGS84 and CGCS2000 ellipsoids differ in the inverse flattening's tenth decimal (298.257223563 against
# 298.257222101): under 1e-9 relative in area, far below what any parcel survey resolves.
WGS84 = Geod(ellps="WGS84")
M2_PER_HA = 10_000.0


def geodesic_area_ha(geometry_lonlat: BaseGeometry) -> float:
    """Area of a (multi)polygon given in WGS84 longitude/latitude degrees, on the WGS84 ellipsoid, in hectares.

    Orientation does not matter (the absolute value is taken); holes are subtracted.
    """
    area_m2, _perimeter_m = WGS84.geometry_area_perimeter(geometry_lonlat)
    return abs(area_m2) / M2_PER_HA
