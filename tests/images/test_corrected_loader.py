"""Corrected pixels on the fly: Project.open_plate honours the recorded illumination setting."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from napari_hcs.images.corrected_loader import (
    CorrectedLoader,
    corrected_plate,
    illumination_setting,
    raw_plate,
    record_illumination,
)
from napari_hcs.images.illumination import apply_illumination, estimate_illumination, load_illumination
from napari_hcs.io import open_plate
from napari_hcs.project import Project
from napari_hcs.samples import sample_path


@pytest.fixture(scope="module")
def sample():
    return open_plate(sample_path("scportrait_mini"), pattern="scportrait")


@pytest.fixture
def project(sample, tmp_path):
    project = Project(tmp_path / "p.napari-hcs")
    project.record_plate(sample, pattern="scportrait")
    estimate_illumination(sample, channels=["Alexa488", "mCherry"]).save(project.folder)
    return project


def test_the_project_plate_is_raw_until_correction_is_applied(project, sample):
    site = sample.site("B04", 1)
    assert illumination_setting(project.read_meta())["applied"] is False
    assert not isinstance(project.open_plate().loader, CorrectedLoader)
    record_illumination(project.folder, method="cellprofiler", applied=True)
    plate = project.open_plate()
    assert isinstance(plate.loader, CorrectedLoader) and plate.pyramid_loader is None
    raw = sample.read_site(site)
    expected = apply_illumination(raw[[0, 2]], load_illumination(project.folder, "cellprofiler"))
    corrected = plate.read_site(site)
    assert corrected.dtype == raw.dtype
    assert np.array_equal(corrected[[0, 2]], expected) and not np.array_equal(corrected[0], raw[0])
    assert np.array_equal(corrected[1], raw[1])              # DAPI has no function: unchanged
    assert np.array_equal(project.open_plate(illumination=False).read_site(site), raw)
    assert np.array_equal(raw_plate(plate).read_site(site), raw)
    record_illumination(project.folder, method="cellprofiler", applied=False)
    assert not isinstance(project.open_plate().loader, CorrectedLoader)


@pytest.mark.slow
def test_the_corrected_plate_pickles_small_and_reads_corrected_pixels_in_another_process(project, sample):
    from napari_hcs.pipeline.parallel import map_sites

    record_illumination(project.folder, method="cellprofiler", applied=True)
    plate = project.open_plate()
    blob = pickle.dumps(plate)
    assert len(blob) < 100_000   # the functions stay in the project folder
    site = sample.site("B02", 0)
    sites = [site, sample.site("B04", 0)]
    remote = dict(map_sites(pickle.loads(blob).read_site, sites, workers=2, pool="process"))
    assert np.array_equal(remote[site], plate.read_site(site))


def test_a_chunked_dask_array_is_corrected_block_by_block(project, sample):
    plate = corrected_plate(sample, project.folder)
    site = sample.site("B02", 2)
    whole = plate.read_site(site)
    chunked = np.asarray(plate.loader(site).rechunk((1, 200, 300)).compute())
    assert np.array_equal(np.asarray(CorrectedLoader(lambda s: sample.site_array(s).rechunk((1, 200, 300)),
                                                     plate.loader.folder, "cellprofiler",
                                                     tuple(sample.channels))(site)), whole)
    assert chunked.shape == whole.shape


def test_bad_settings_are_refused_with_words(project, sample, tmp_path):
    with pytest.raises(FileNotFoundError, match="napari-hcs illumination"):
        record_illumination(project.folder, method="basic", applied=True)
    from napari_hcs.images.vignette import make_vignetted_plate

    other = make_vignetted_plate(n_sites=2, shape=(64, 64), channels=("Alexa488", "DAPI"))
    with pytest.raises(ValueError, match="540 x 540"):
        corrected_plate(other, project.folder)
