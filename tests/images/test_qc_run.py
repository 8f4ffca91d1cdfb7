"""Quality control of whole plates: real sites, altered copies and bad input, into the project."""

from __future__ import annotations

import os
from dataclasses import dataclass

import dask.array as da
import numpy as np
import pandas as pd
import pytest
import tifffile
from scipy import ndimage

from napari_hcs.images.qc_run import QC_TABLE, read_qc_table, run_qc
from napari_hcs.images.quality import QUALITY_METRICS
from napari_hcs.images.site_exclusions import SiteExclusions
from napari_hcs.io import LabelStore, open_plate
from napari_hcs.plate import Plate, Site

SCPORTRAIT = "Timepoint{t:03d}_Row{row:02d}_Well{col:02d}_{channel}_zstack001_r000_c000.tif"
NF1 = "{well}_01_{index}_{field}_{channel}_001.tif"
REAL_SCPORTRAIT = ["B02_f000_t001", "B02_f000_t002", "B02_f000_t003", "B04_f000_t001", "B04_f000_t002",
                   "B04_f000_t003"]


def blurred(image: np.ndarray) -> np.ndarray:
    """Out of focus: a Gaussian blur of sigma 2 pixels, the type kept."""
    return ndimage.gaussian_filter(image, (0, 2, 2)).astype(image.dtype)


def saturated(image: np.ndarray, gain: float = 6.0) -> np.ndarray:
    """Over-exposed: the gain raised and clipped at the type's maximum."""
    top = np.iinfo(image.dtype).max
    return np.minimum(image.astype(np.float64) * gain, top).astype(image.dtype)


def _link_or_copy(source, target) -> None:
    try:
        os.symlink(source, target)
    except OSError:
        target.write_bytes(source.read_bytes())


def _write_scportrait_site(folder, image, *, row, col, t, channels) -> None:
    for channel, plane in zip(channels, image):
        tifffile.imwrite(folder / SCPORTRAIT.format(t=t, row=row, col=col, channel=channel), plane)


@pytest.fixture(scope="module")
def scportrait_qc_plate(tmp_path_factory, scportrait_dir):
    """The 6 real sites, and in well C02 a blurred, a saturated and a constant copy of B02 t1;
    in well C04 a site missing its mCherry file and a site whose DAPI file is not a TIFF."""
    real = open_plate(scportrait_dir)
    folder = tmp_path_factory.mktemp("scportrait_qc")
    for path in sorted((scportrait_dir / "input_images").rglob("*.tif")):
        _link_or_copy(path, folder / path.name)
    image = real.read_site(real.site("B02", 0))
    channels = real.channels
    _write_scportrait_site(folder, blurred(image), row=3, col=2, t=1, channels=channels)
    _write_scportrait_site(folder, saturated(image), row=3, col=2, t=2, channels=channels)
    _write_scportrait_site(folder, np.full_like(image, 500), row=3, col=2, t=3, channels=channels)
    _write_scportrait_site(folder, image[:2], row=3, col=4, t=1, channels=channels[:2])
    _write_scportrait_site(folder, image, row=3, col=4, t=2, channels=channels)
    (folder / SCPORTRAIT.format(t=2, row=3, col=4, channel="DAPI")).write_bytes(b"not a TIFF")
    return folder


def _flags(result) -> dict[str, list[str]]:
    return {key: flags for key, flags in result.flags.items() if flags}


def test_scportrait_blurred_saturated_and_bad_sites_are_flagged_and_real_ones_are_not(scportrait_qc_plate,
                                                                                      tmp_path):
    plate = open_plate(scportrait_qc_plate, pattern="scportrait")
    result = run_qc(plate, project_dir=tmp_path)
    flags = _flags(result)
    assert not set(flags) & set(REAL_SCPORTRAIT), flags
    assert flags["C02_f000_t001"] == ["focus"]
    assert "saturation" in flags["C02_f000_t002"]
    assert flags["C02_f000_t003"] == ["blank"]
    assert flags["C04_f000_t001"] == ["missing_channel"]
    assert flags["C04_f000_t002"] == ["missing_channel"]
    table = result.table
    assert len(table) == 11 * 3 and set(table["site_key"]) == set(REAL_SCPORTRAIT) | set(flags)
    measured = (table["error"] == "") & (table["site_key"] != "C02_f000_t003")   # all but the constant site
    assert table.loc[measured, "power_log_log_slope"].notna().all()
    missing = table[table["site_key"] == "C04_f000_t001"]
    assert missing["error"].str.contains("missing channel").all() and missing["focus_score"].isna().all()
    assert "focus: PowerLogLogSlope" in table.loc[table["site_key"] == "C02_f000_t001", "reasons"].iloc[0]
    # written atomically beside each other, and read back the same
    assert (tmp_path / QC_TABLE).is_file() and (tmp_path / QC_TABLE).with_suffix(".csv").is_file()
    back = read_qc_table(tmp_path)
    pd.testing.assert_frame_equal(back, table, check_dtype=False)
    assert SiteExclusions(tmp_path).excluded() == set(flags)
    assert set(result.summary["flagged"]["C02_f000_t001"]) >= {"well", "field", "timepoint", "flags"}


def test_a_file_gone_after_opening_is_a_missing_channel_row_and_the_run_completes(scportrait_dir, tmp_path):
    folder = tmp_path / "plate"
    folder.mkdir()
    for path in sorted((scportrait_dir / "input_images").rglob("Timepoint001*.tif")):
        _link_or_copy(path, folder / path.name)
    plate = open_plate(folder, pattern="scportrait")
    next(folder.glob("Timepoint001_Row02_Well04_mCherry*")).unlink()
    result = run_qc(plate, project_dir=tmp_path / "project")
    rows = result.table.set_index(["site_key", "channel"])
    assert rows.loc[("B04_f000_t001", "mCherry"), "flags"] == "missing_channel"
    assert "mCherry" in rows.loc[("B04_f000_t001", "mCherry"), "error"]
    assert rows.loc[("B04_f000_t001", "DAPI"), "error"] == ""        # the other channels are measured
    assert np.isfinite(rows.loc[("B04_f000_t001", "DAPI"), "power_log_log_slope"])
    assert result.summary["failures"][0]["site"] == "B04_f000_t001"


@pytest.fixture(scope="module")
def nf1_qc_plate(tmp_path_factory, shared_data):
    """The NF1 site cut into its 4 quarters (fields 1-4 of D06); a blurred and a saturated copy of
    the first quarter in well D07."""
    real = open_plate(shared_data / "nf1_cellpainting" / "Plate_2_images")
    image = real.read_site(next(real.iter_sites()))
    height, width = image.shape[1] // 2, image.shape[2] // 2
    quarters = [image[:, i * height:(i + 1) * height, j * width:(j + 1) * width] for i in (0, 1) for j in (0, 1)]
    folder = tmp_path_factory.mktemp("nf1_qc")
    sites = [("D6", field, quarter) for field, quarter in enumerate(quarters, start=1)]
    sites += [("D7", 1, blurred(quarters[0])), ("D7", 2, saturated(quarters[0], gain=3.0))]
    for well, field, site_image in sites:
        for index, (channel, plane) in enumerate(zip(real.channels, site_image), start=1):
            tifffile.imwrite(folder / NF1.format(well=well, index=index, field=field, channel=channel), plane)
    return folder


def test_nf1_quarters_are_clean_and_their_altered_copies_flagged(nf1_qc_plate, tmp_path):
    plate = open_plate(nf1_qc_plate, pattern="nf1")
    result = run_qc(plate, project_dir=tmp_path)
    flags = _flags(result)
    assert set(flags) == {"D07_f001_t000", "D07_f002_t000"}, flags
    assert flags["D07_f001_t000"] == ["focus"]
    assert "saturation" in flags["D07_f002_t000"]
    assert result.table["focus_score"].notna().all()


@dataclass(frozen=True)
class _ArrayLoader:
    images: dict

    def __call__(self, site):
        return da.from_array(self.images[site], chunks=(1, -1, -1))


def test_nan_pixels_and_cell_counts(scportrait_dir, tmp_path):
    real = open_plate(scportrait_dir)
    images = {s: real.read_site(s).astype(np.float32) for s in real.iter_sites()
              if s.well == "B02" or s.timepoint == 2}
    bad = Site("C02", 0, 1)
    images[bad] = images[Site("B02", 0, 1)].copy()
    images[bad][1, :100, :100] = np.nan
    sites = {}
    for site in images:
        sites.setdefault(site.well, []).append(site)
    plate = Plate(name="float", channels=real.channels, sites=sites, loader=_ArrayLoader(images),
                  shape=real.shape, dtype=np.float32)
    nuclei = np.zeros(real.shape, np.int32)
    nuclei[10:20, 10:20], nuclei[30:40, 30:40] = 1, 7
    LabelStore(tmp_path).write(Site("B04", 0, 2), {"nuclei": nuclei})
    result = run_qc(plate, project_dir=tmp_path)
    assert _flags(result) == {"C02_f000_t001": ["nan"]}
    rows = result.table.set_index(["site_key", "channel"])
    assert rows.loc[("C02_f000_t001", "DAPI"), "nan_fraction"] == pytest.approx(1e4 / real.shape[0] ** 2)
    assert rows.loc[("C02_f000_t001", "DAPI"), "reasons"].startswith("nan: ")
    assert np.isfinite(rows.loc[("C02_f000_t001", "DAPI"), "power_log_log_slope"])
    assert rows.loc[("B04_f000_t002", "DAPI"), "cell_count"] == 2
    assert rows["cell_count"].isna().sum() == len(rows) - 3
    assert rows["percent_saturated"].isna().all()                      # no known range for floats
    assert list(result.table.columns[6:6 + len(QUALITY_METRICS)]) == list(QUALITY_METRICS)


def test_cancel_writes_nothing_and_keeps_the_previous_table(scportrait_dir, tmp_path):
    from napari_hcs.cancel import Cancelled

    plate = open_plate(scportrait_dir)
    calls = []
    with pytest.raises(Cancelled):
        run_qc(plate, project_dir=tmp_path, cancel=lambda: calls.append(1) or len(calls) > 2)
    assert read_qc_table(tmp_path) is None


def test_a_project_of_another_plate_is_refused_before_reading(scportrait_dir, shared_data, tmp_path):
    from napari_hcs.project import Project

    Project(tmp_path).record_plate(open_plate(scportrait_dir))
    other = open_plate(shared_data / "nf1_cellpainting" / "Plate_2_images")
    with pytest.raises(ValueError, match="is not the plate of project"):
        run_qc(other, project_dir=tmp_path)
    assert read_qc_table(tmp_path) is None
