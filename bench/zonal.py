"""Benchmark: geo.zonal against exactextract and rasterstats (categorical), same inputs, one process tree.

    .venv/bin/pip install -r bench/requirements.txt
    .venv/bin/python bench/zonal.py                 # both cases, 3 runs each of geo.zonal and exactextract
    .venv/bin/python bench/zonal.py --case county --runs 1 --tools zonal,exactextract

Cases
    esa     the ESA WorldCover tile in ../shared/data/ (36000 x 36000, EPSG:4326), split into 4 quadrants.
    county  a generated Pingwu-sized county: 11000 x 11000 pixels of 10 m in CGCS2000 / 3-degree Gauss-Krüger
            CM 105E (EPSG:4544) around 104.5°E 32.4°N, with 5000 parcels tiling it (fixed seed; written under
            --workdir, default bench/out/, which git ignores).

Each tool runs in its own subprocess, so that peak RSS is the tool's own (its VmHWM, plus cores x its largest
worker process's peak when it forks workers: an upper bound); wall time is the tool's
call alone, measured inside the subprocess (the interpreter start and reading the parcel file are left out
for every tool alike). All tools get the parcels in the raster's CRS. "agree" compares each tool's total
coverage-weighted pixel count per class over all parcels with geo.zonal's: exactextract should match to
1e-6; rasterstats counts whole pixels by their centre, so it differs at parcel edges.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ESA = ROOT.parent / "shared" / "data" / "ESA_WorldCover_10m_2020_v100_N00E006_Map.tif"
COUNTY_SIZE = 11_000
COUNTY_PARCELS = 5_000
SEED = 20_260_101


# -- inputs -----------------------------------------------------------------------------------------------------


def esa_case(workdir: Path) -> tuple[Path, Path]:
    from shapely.geometry import box, mapping

    quadrants = [box(6.0, 1.5, 7.5, 3.0), box(7.5, 1.5, 9.0, 3.0), box(6.0, 0.0, 7.5, 1.5), box(7.5, 0.0, 9.0, 1.5)]
    parcels = workdir / "esa_quadrants.geojson"
    write_features(parcels, [mapping(q) for q in quadrants], "EPSG:4326")
    return ESA, parcels


def county_case(workdir: Path) -> tuple[Path, Path]:
    """A 10 m land-cover raster with patchy classes, and 5000 parcels of varied size tiling it."""
    raster, parcels = workdir / "county_lc.tif", workdir / "county_parcels.geojson"
    if raster.exists() and parcels.exists():
        return raster, parcels
    import numpy as np
    import rasterio
    import shapely
    from affine import Affine
    from rasterio.windows import Window

    rng = np.random.default_rng(SEED)
    x0, y0 = 452_600.0, 3_640_000.0  # about 104.48°E 32.89°N; the county runs 110 km south and east
    transform = Affine(10.0, 0.0, x0, 0.0, -10.0, y0)
    # Classes (CLCD codes 1-9) from a smooth random field at 100 m, refined with 10 m speckle: forest-dominated
    # like Pingwu, with grassland, shrub, cropland in patches and some water and impervious.
    coarse = rng.normal(size=(COUNTY_SIZE // 10 + 2, COUNTY_SIZE // 10 + 2))
    for _ in range(6):
        coarse = (coarse + np.roll(coarse, 1, 0) + np.roll(coarse, -1, 0) + np.roll(coarse, 1, 1)
                  + np.roll(coarse, -1, 1)) / 5
    edges = np.quantile(coarse, [0.08, 0.12, 0.25, 0.32, 0.34, 0.36, 0.78, 0.9])
    coarse_classes = (np.array([1, 8, 4, 5, 9, 7, 2, 3, 4], dtype=np.uint8))[np.searchsorted(edges, coarse)]
    profile = dict(driver="GTiff", width=COUNTY_SIZE, height=COUNTY_SIZE, count=1, dtype="uint8", nodata=0,
                   crs="EPSG:4544", transform=transform, tiled=True, blockxsize=512, blockysize=512,
                   compress="deflate")
    with rasterio.open(raster, "w", **profile) as dst:
        for row in range(0, COUNTY_SIZE, 1000):
            rows = min(1000, COUNTY_SIZE - row)
            block = np.repeat(np.repeat(coarse_classes[row // 10: row // 10 + rows // 10 + 1], 10, 0), 10, 1)
            block = block[:rows, :COUNTY_SIZE].copy()
            speckle = rng.random(block.shape) < 0.04
            block[speckle] = rng.integers(1, 10, speckle.sum(), dtype=np.uint8)
            dst.write(block, 1, window=Window(0, row, COUNTY_SIZE, rows))
    # Parcels: 50,000 Voronoi cells grouped into 5000 parcels by nearest (weighted) seed, so that each parcel is
    # an irregular, often concave polygon of 20-100 vertices; together they tile the raster exactly.
    extent = shapely.box(x0, y0 - COUNTY_SIZE * 10, x0 + COUNTY_SIZE * 10, y0)
    fine = rng.uniform([x0, y0 - COUNTY_SIZE * 10], [x0 + COUNTY_SIZE * 10, y0], (10 * COUNTY_PARCELS, 2))
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(fine), extend_to=extent, ordered=True))
    cells = shapely.intersection(cells, extent)
    seed_index = rng.choice(len(fine), COUNTY_PARCELS, replace=False)
    seeds = fine[seed_index]
    weight = rng.lognormal(0.0, 0.35, COUNTY_PARCELS)
    centres = shapely.get_coordinates(shapely.centroid(cells))
    group = np.empty(len(cells), dtype=np.int64)
    for start in range(0, len(cells), 2000):
        d = ((centres[start:start + 2000, None, :] - seeds[None, :, :]) ** 2).sum(-1) / weight[None, :] ** 2
        group[start:start + 2000] = d.argmin(1)
    group[seed_index] = np.arange(COUNTY_PARCELS)  # every parcel keeps at least its own seed's cell
    features = []
    for g in range(COUNTY_PARCELS):
        members = cells[group == g]
        if len(members):
            features.append(shapely.geometry.mapping(shapely.coverage_union_all(members)))
    write_features(parcels, features, "EPSG:4544")
    return raster, parcels


def write_features(path: Path, geometries: list[dict], crs: str) -> None:
    path.write_text(json.dumps({"crs": crs, "features": [
        {"type": "Feature", "properties": {"id": i}, "geometry": g} for i, g in enumerate(geometries)]}))


# -- one tool, in its own process -------------------------------------------------------------------------------


def run_tool(tool: str, raster: str, parcels_path: str, out: str) -> None:
    data = json.loads(Path(parcels_path).read_text())
    features = data["features"]
    totals: dict[int, float] = {}
    if tool == "zonal":
        sys.path.insert(0, str(ROOT))
        import shapely

        from geo.zonal_files import zonal_class_areas

        geometries = [shapely.geometry.shape(f["geometry"]) for f in features]
        start, cpu_start = time.perf_counter(), cpu_seconds()
        results = zonal_class_areas(raster, geometries, data["crs"])
        seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu_start
        for r in results:
            for cls, px in r.pixel_count_by_class.items():
                totals[cls] = totals.get(cls, 0.0) + px
    elif tool == "exactextract":
        from exactextract import exact_extract

        start, cpu_start = time.perf_counter(), cpu_seconds()
        results = exact_extract(raster, features, ["unique", "frac", "count"], output="geojson")
        seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu_start
        for r in results:
            p = r["properties"]
            for cls, frac in zip(p["unique"], p["frac"], strict=True):
                totals[int(cls)] = totals.get(int(cls), 0.0) + float(frac) * p["count"]
    elif tool == "rasterstats":
        from rasterstats import zonal_stats

        start, cpu_start = time.perf_counter(), cpu_seconds()
        results = zonal_stats(features, raster, categorical=True)
        seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu_start
        for r in results:
            for cls, n in r.items():
                totals[int(cls)] = totals.get(int(cls), 0.0) + float(n)
    else:
        raise SystemExit(f"unknown tool {tool!r}")
    Path(out).write_text(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "totals": totals,
                                     "peak_rss_mb": peak_rss_mb()}))


def cpu_seconds() -> float:
    """User + system CPU time of this process and its finished worker processes."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def peak_rss_mb() -> float:
    """Peak resident memory of this process (VmHWM) plus, if it forked worker processes, cpu_count times the
    largest worker's peak: an upper bound, since forked workers share their parent's pages. (getrusage's maxrss
    of a child started by fork + exec would count the parent's memory at fork time, which Linux keeps.)"""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            own = int(line.split()[1]) / 1024
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own + (os.cpu_count() or 1) * workers


def measure(tool: str, raster: Path, parcels: Path, workdir: Path) -> dict:
    out = workdir / f"result_{tool}.json"
    process = subprocess.Popen([sys.executable, __file__, "--run", tool, str(raster), str(parcels), str(out)])
    if process.wait() != 0:
        raise SystemExit(f"{tool} failed with status {process.returncode}")
    result = json.loads(out.read_text())
    result["totals"] = {int(k): v for k, v in result["totals"].items()}
    return result


def agreement(ours: dict[int, float], theirs: dict[int, float]) -> float:
    """Largest difference in any class's total pixel count, relative to the whole total."""
    total = sum(ours.values())
    return max(abs(ours.get(c, 0.0) - theirs.get(c, 0.0)) for c in set(ours) | set(theirs)) / total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--case", choices=["esa", "county", "all"], default="all")
    parser.add_argument("--tools", default="zonal,exactextract,rasterstats")
    parser.add_argument("--runs", type=int, default=3, help="runs per tool (rasterstats: 1, it is slow)")
    parser.add_argument("--workdir", type=Path, default=ROOT / "bench" / "out")
    parser.add_argument("--run", nargs=4, metavar=("TOOL", "RASTER", "PARCELS", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        run_tool(*args.run)
        return
    args.workdir.mkdir(parents=True, exist_ok=True)
    tools = args.tools.split(",")
    print(f"cores: {os.cpu_count()}; python {sys.version.split()[0]}")
    for case in (["esa", "county"] if args.case == "all" else [args.case]):
        started = time.perf_counter()
        raster, parcels = esa_case(args.workdir) if case == "esa" else county_case(args.workdir)
        n = len(json.loads(parcels.read_text())["features"])
        print(f"\n== {case}: {raster.name}, {n} parcels (inputs ready in {time.perf_counter() - started:.1f} s)")
        rows = {}
        for tool in tools:
            runs = [measure(tool, raster, parcels, args.workdir) for _ in range(1 if tool == "rasterstats"
                                                                            else args.runs)]
            rows[tool] = {
                "seconds": statistics.median(r["seconds"] for r in runs),
                "all_seconds": [round(r["seconds"], 2) for r in runs],
                "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
                "cpu_seconds": statistics.median(r["cpu_seconds"] for r in runs),
                "totals": runs[0]["totals"],
            }
        base = rows.get("zonal")
        print(f"{'tool':<13}{'median s':>10}{'runs s':>22}{'CPU s':>8}{'peak RSS MB':>13}{'x zonal':>9}"
              "  agree (max class diff)")
        for tool, row in rows.items():
            ratio = row["seconds"] / base["seconds"] if base else float("nan")
            diff = agreement(base["totals"], row["totals"]) if base else float("nan")
            print(f"{tool:<13}{row['seconds']:>10.2f}{row['all_seconds']!s:>22}{row['cpu_seconds']:>8.1f}"
                  f"{row['peak_rss_mb']:>13.0f}"
                  f"{ratio:>9.2f}  {diff:.2e}")


if __name__ == "__main__":
    main()
