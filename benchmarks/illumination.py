"""Illumination correction: CellProfiler-style function against BaSiC (basicpy), side by side.

1. Flat-field test: a synthetic vignetted plate (uniform fluorescent field x a
   vignette falling to about half at the edges, camera offset, shot noise, bright
   discs the estimate must ignore). The functions are estimated from the plate's
   sites and applied to a bare uniform field not used to estimate them: its
   coefficient of variation before and after, and the dtype kept.
2. The real plate (scportrait_timecourse, 6 sites of 1080 x 1080 x 3): per site and
   channel the ratio of the background (10th percentile) in the four corner tiles
   to the centre tile (5 x 5 tiles), and the spread |1 - ratio| averaged over
   sites, before and after.
3. CPU seconds of each estimate (reading the sites included).

Every figure is printed on its own line as ``name value unit``. BaSiC rows appear
when basicpy imports (``pip install --no-deps basicpy torch-dct "hyperactive<5"
gradient-free-optimizers``).

Run: ``OMP_NUM_THREADS=1 python benchmarks/illumination.py``
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from napari_hcs.images.basic_illumination import basicpy_available
from napari_hcs.images.illumination import apply_illumination, estimate_illumination
from napari_hcs.images.vignette import corner_centre_ratio, flat_field_cv, make_vignetted_plate
from napari_hcs.plate import Site

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "scportrait_timecourse" / "input_images"


def _methods() -> list[str]:
    return ["cellprofiler", "basic"] if basicpy_available() else ["cellprofiler"]


def _timed(plate, method):
    started = time.process_time()
    functions = estimate_illumination(plate, method=method)
    return functions, time.process_time() - started


def flat_field(n_sites: int = 16, shape=(512, 512)) -> None:
    plate = make_vignetted_plate(n_sites=n_sites, shape=shape, levels=(10000.0, 30000.0), cells=30)
    slide = plate.loader.render(Site("A01", 999, 0), cells=0)
    for c, channel in enumerate(plate.channels):
        print(f"flat_field_cv_raw_{channel} {flat_field_cv(slide[c]):.4f} ratio")
    for method in _methods():
        functions, seconds = _timed(plate, method)
        corrected = apply_illumination(slide, functions)
        for c, channel in enumerate(plate.channels):
            before, after = flat_field_cv(slide[c]), flat_field_cv(corrected[c])
            print(f"flat_field_cv_{method}_{channel} {after:.4f} ratio")
            print(f"flat_field_cv_reduction_{method}_{channel} {before / after:.1f} x")
        kept = corrected.dtype == slide.dtype and int(corrected.max()) <= np.iinfo(slide.dtype).max
        print(f"flat_field_dtype_kept_{method} {int(kept)} bool")
        print(f"flat_field_cpu_{method}_{n_sites}_sites_{shape[0]}px {seconds:.2f} s")


def real_plate() -> None:
    from napari_hcs.io import open_plate

    if not DATA.is_dir():
        print(f"# real data not found at {DATA}")
        return
    plate = open_plate(DATA, pattern="scportrait")
    images = [plate.read_site(site) for site in plate.iter_sites()]
    started = time.process_time()
    [plate.read_site(site) for site in plate.iter_sites()]
    print(f"scportrait_read_cpu_{plate.n_sites()}_sites {time.process_time() - started:.2f} s")

    def spread(stack):
        return np.mean([[abs(1 - corner_centre_ratio(p)) for p in image] for image in stack], axis=0)

    def ratio(stack):
        return np.mean([[corner_centre_ratio(p) for p in image] for image in stack], axis=0)

    results = {"raw": images}
    for method in _methods():
        functions, seconds = _timed(plate, method)
        print(f"scportrait_cpu_{method} {seconds:.2f} s")
        results[method] = [apply_illumination(image, functions) for image in images]
    for name, stack in results.items():
        for c, channel in enumerate(plate.channels):
            print(f"scportrait_corner_centre_{name}_{channel} {ratio(stack)[c]:.4f} ratio")
            print(f"scportrait_spread_{name}_{channel} {spread(stack)[c]:.4f} ratio")
        print(f"scportrait_spread_{name}_mean {spread(stack).mean():.4f} ratio")


if __name__ == "__main__":
    flat_field()
    real_plate()
