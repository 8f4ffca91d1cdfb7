"""Quality control of one real 1080 x 1080 x 3 site on one core, beside the bare calls it is made of.

Reads site B02 t1 of the scPortrait time course (uint16) once, then times, each the
best of ``--repeats`` runs (as timeit reports; the median of the QC runs too, for a
shared machine) in this process with every thread pool limited to one thread:

* ``site_quality`` (all metrics of the 3 channels);
* the numpy / scipy calls it is made of, over the 3 channels: ``scipy.fft.rfft2``
  (workers=1) of the float64 planes, ``np.bincount`` of the uint16 planes (the
  histogram that gives quantiles, moments and extremes), and the ring sums of the
  power spectrum (``np.bincount`` over the precomputed rings);
* for reference, CellProfiler's own way: ``centrosome.radial_power_spectrum.rps``
  as written (full ``fft2``, ``ndimage.sum`` over a radius image) and ``np.quantile``
  of the 5 quantiles;
* reading the site (LZW-compressed TIFFs), for scale.

Prints ``name value unit`` lines; the ratio of ``site_quality`` to the sum of its bare
calls is measured in the same run.

Run: ``python benchmarks/qc_speed.py [--repeats 9] [--figure docs/images/qc_focus.png]``; with
``--figure`` it also draws the site's DAPI channel beside its blurred copy (Gaussian, sigma 2
pixels) with their PowerLogLogSlope and ring power spectra (matplotlib, Agg).
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import scipy.fft  # noqa: E402
from scipy import ndimage  # noqa: E402

from napari_hcs.images.quality import _spectrum_rings, site_quality  # noqa: E402
from napari_hcs.io import open_plate  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "scportrait_timecourse"


def _times(func, repeats: int) -> list[float]:
    func()  # warm caches (ring tables, FFT plans)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return times


def _best_seconds(func, repeats: int) -> float:
    return min(_times(func, repeats))


def _cellprofiler_rps(plane: np.ndarray):
    radii2 = np.arange(plane.shape[0])[:, None] ** 2 + np.arange(plane.shape[1]) ** 2
    radii2 = np.minimum(radii2, np.flipud(radii2))
    radii2 = np.minimum(radii2, np.fliplr(radii2))
    plane = plane / np.median(np.abs(plane - plane.mean()))
    magnitude = np.abs(scipy.fft.fft2(plane - plane.mean(), workers=1))
    radii = np.floor(np.sqrt(radii2)).astype(int) + 1
    labels = np.arange(2, int(min(plane.shape) / 8.0))
    return ndimage.sum(magnitude, radii, labels), ndimage.sum(magnitude ** 2, radii, labels)


def _ring_power(plane: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    flat, ring, labels = _spectrum_rings(plane.shape)
    spectrum = scipy.fft.rfft2(plane.astype(np.float64), workers=1)
    return labels, np.bincount(ring - labels[0], weights=np.abs(spectrum.ravel()[flat]) ** 2)


def draw_figure(image: np.ndarray, channels: list[str], path: Path) -> None:
    """The DAPI channel of a real site beside its blurred copy, their slopes and spectra."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    index = channels.index("DAPI")
    sharp = image[index]
    blurred = ndimage.gaussian_filter(sharp, 2)
    slopes = [site_quality(p[np.newaxis], channels=["DAPI"]).loc[0, "power_log_log_slope"] for p in (sharp, blurred)]
    figure, axes = plt.subplots(1, 3, figsize=(12, 4.2), dpi=90)
    window = (slice(380, 700), slice(380, 700))
    top = np.quantile(sharp, 0.995)
    for axis, plane, slope, title in zip(axes, (sharp, blurred), slopes, ("real site", "blurred copy (sigma 2 px)")):
        axis.imshow(plane[window], cmap="gray", vmin=np.quantile(sharp, 0.01), vmax=top)
        axis.set_title(f"{title}\nPowerLogLogSlope {slope:.2f}")
        axis.set_axis_off()
    for plane, slope, label, colour in zip((sharp, blurred), slopes, ("real", "blurred"), ("tab:blue", "tab:red")):
        radii, power = _ring_power(plane)
        fit = np.polyfit(np.log(radii), np.log(power), 1)
        axes[2].loglog(radii, power, ".", markersize=3, color=colour, label=f"{label}: slope {slope:.2f}")
        axes[2].loglog(radii, np.exp(np.polyval(fit, np.log(radii))), "-", linewidth=1, color=colour)
    axes[2].set_xlabel("radius (frequency ring)")
    axes[2].set_ylabel("power summed over the ring")
    axes[2].set_title("radial power spectrum, log-log fit")
    axes[2].legend()
    figure.suptitle("scPortrait B02 t1, DAPI: whole 1080 x 1080 site measured, 320 x 320 shown", y=0.98)
    figure.tight_layout(rect=(0, 0, 1, 0.93))
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--figure", type=Path, help="also draw the real site beside its blurred copy here (PNG)")
    args = parser.parse_args()
    plate = open_plate(DATA)
    site = plate.site("B02", 0)
    start = time.perf_counter()
    image = plate.read_site(site)
    read_seconds = time.perf_counter() - start
    channels = plate.channels
    planes = [p.astype(np.float64) for p in image]
    flat, ring, labels = _spectrum_rings(image.shape[1:])
    spectra = [scipy.fft.rfft2(p - p.mean(), workers=1) for p in planes]

    qc_times = _times(lambda: site_quality(image, channels=channels), args.repeats)
    figures = {
        "qc_site_quality": min(qc_times),
        "bare_rfft2": _best_seconds(lambda: [scipy.fft.rfft2(p, workers=1) for p in planes], args.repeats),
        "bare_bincount_histogram": _best_seconds(lambda: [np.bincount(p.ravel()) for p in image], args.repeats),
        "bare_ring_sums": _best_seconds(
            lambda: [np.bincount(ring - labels[0], weights=np.abs(s.ravel()[flat]) ** 2) for s in spectra],
            args.repeats),
        "reference_cellprofiler_rps": _best_seconds(lambda: [_cellprofiler_rps(p) for p in planes], args.repeats),
        "reference_np_quantile": _best_seconds(
            lambda: [np.quantile(p, [0.01, 0.25, 0.5, 0.75, 0.99]) for p in image], args.repeats),
    }
    bare = figures["bare_rfft2"] + figures["bare_bincount_histogram"] + figures["bare_ring_sums"]
    print(f"site_shape {'x'.join(str(s) for s in image.shape[1:])}x{image.shape[0]} pixels")
    print(f"read_site_lzw {read_seconds:.3f} s")
    for name, seconds in figures.items():
        print(f"{name} {seconds:.4f} s")
    print(f"qc_site_quality_median {statistics.median(qc_times):.4f} s")
    print(f"qc_site_quality_over_bare_calls {figures['qc_site_quality'] / bare:.2f} x")
    print(f"qc_sites_per_second_one_core {1 / figures['qc_site_quality']:.1f} sites/s")
    print(f"qc_under_half_a_second {statistics.median(qc_times) < 0.5}")
    if args.figure is not None:
        draw_figure(image, channels, args.figure)


if __name__ == "__main__":
    main()
