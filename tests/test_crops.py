"""Single-cell crops: centring, edge padding, masking, rescaling, centroids."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from skimage.measure import regionprops_table

from napari_hcs.crops import cell_centroids, extract_crops
from napari_hcs.segmentation import segment_nuclei


def ramp_image(shape=(3, 60, 80)):
    """Image whose pixel value encodes (channel, row, column), never 0."""
    c, y, x = np.indices(shape)
    return (c * 10000 + y * 100 + x + 1).astype(np.float32)


def test_centroids_match_regionprops():
    labels = np.zeros((50, 60), np.int32)
    labels[5:15, 5:12] = 4
    labels[30:45, 20:50] = 9
    labels[40, 55] = 2
    ids, centroids = cell_centroids(labels)
    props = regionprops_table(labels, properties=("label", "centroid"))
    assert ids.tolist() == props["label"].tolist() == [2, 4, 9]
    np.testing.assert_allclose(centroids, np.stack([props["centroid-0"], props["centroid-1"]], 1))
    empty_ids, empty = cell_centroids(np.zeros((5, 5), np.uint16))
    assert empty_ids.shape == (0,) and empty.shape == (0, 2)
    with pytest.raises(ValueError, match="integer"):
        cell_centroids(np.zeros((5, 5), float))


def test_crop_is_the_window_around_the_centroid():
    image = ramp_image()
    crops = extract_crops(image, [(30, 40), (20.4, 10.6)], size=8)
    assert crops.shape == (2, 3, 8, 8) and crops.dtype == np.float32
    np.testing.assert_array_equal(crops[0], image[:, 26:34, 36:44])
    np.testing.assert_array_equal(crops[1], image[:, 16:24, 7:15])
    odd = extract_crops(image, [(30, 40)], size=5)
    assert odd[0, 0, 2, 2] == image[0, 30, 40]


def test_crops_at_edges_are_zero_padded():
    image = ramp_image()
    crops = extract_crops(image, [(0, 0), (59, 79), (-3, 100)], size=10)
    np.testing.assert_array_equal(crops[0][:, 5:, 5:], image[:, :5, :5])
    assert not crops[0][:, :5].any() and not crops[0][:, :, :5].any()
    np.testing.assert_array_equal(crops[1][:, :6, :6], image[:, 54:, 74:])
    assert not crops[1][:, 6:].any() and not crops[1][:, :, 6:].any()
    assert not crops[2].any()  # centre outside the image: all padding


def test_masking_keeps_only_the_own_cell():
    image = ramp_image((2, 40, 40))
    labels = np.zeros((40, 40), np.int32)
    labels[10:20, 10:20] = 1
    labels[10:20, 20:30] = 2
    ids, centroids = cell_centroids(labels)
    crops = extract_crops(image, centroids, size=16, labels=labels, label_ids=ids, mask_outside=True)
    for crop, label, (r, c) in zip(crops, ids, np.floor(centroids + 0.5).astype(int)):
        window = labels[r - 8 : r + 8, c - 8 : c + 8]
        assert np.array_equal(crop[0] != 0, window == label)
        assert (crop[1] != 0).sum() == 100
    default_ids = extract_crops(image, centroids, size=16, labels=labels, mask_outside=True)
    np.testing.assert_array_equal(default_ids, crops)
    with pytest.raises(ValueError, match="labels"):
        extract_crops(image, centroids, size=16, mask_outside=True)
    with pytest.raises(ValueError, match="label ids"):
        extract_crops(image, centroids, size=16, labels=labels, label_ids=[1], mask_outside=True)


def test_rescaled_crops_have_the_requested_size():
    image = ramp_image((1, 200, 200))
    centre = [(100, 100)]
    for scale in (0.5, 0.8, 1.5, 2.0):
        crops = extract_crops(image, centre, size=32, scale=scale)
        assert crops.shape == (1, 1, 32, 32)
    # Half scale: 64 image pixels map onto 32, so the ramp steps by 2 per crop pixel.
    half = extract_crops(image, centre, size=32, scale=0.5)[0, 0]
    np.testing.assert_allclose(np.diff(half[16, 4:28]), 2.0, atol=1e-3)
    np.testing.assert_allclose(np.diff(half[4:28, 16]), 200.0, atol=1e-2)
    flat = extract_crops(np.full((2, 100, 100), 7.0), [(50, 50)], size=16, scale=0.6)
    np.testing.assert_allclose(flat, 7.0, rtol=1e-6)


def test_rescaled_crops_match_across_magnifications():
    rng = np.random.default_rng(1)
    small = rng.random((1, 60, 60)).astype(np.float32)
    large = np.repeat(np.repeat(small, 2, axis=1), 2, axis=2)  # the same field at 2x
    reference = extract_crops(small, [(30, 30)], size=16)
    from_large = extract_crops(large, [(60, 60)], size=16, scale=0.5)
    np.testing.assert_allclose(from_large, reference, atol=1e-5)


def test_dtype_2d_input_and_empty():
    image = ramp_image((1, 30, 30))
    as_int = extract_crops(image[0], [(15, 15)], size=4, dtype=np.uint8)
    assert as_int.shape == (1, 1, 4, 4) and as_int.dtype == np.uint8 and as_int.max() == 255
    assert extract_crops(image, np.zeros((0, 2)), size=8).shape == (0, 1, 8, 8)
    with pytest.raises(ValueError, match="size"):
        extract_crops(image, [(1, 1)], size=0)
    with pytest.raises(ValueError, match=r"\(C, Y, X\)"):
        extract_crops(np.zeros((1, 2, 3, 4)), [(1, 1)])


def test_crops_of_a_real_site(scportrait_dir):
    folder = scportrait_dir / "input_images" / "Row02_Well02_r000_c000"
    names = ("Alexa488", "DAPI", "mCherry")
    image = np.stack(
        [tifffile.imread(folder / f"Timepoint001_Row02_Well02_{n}_zstack001_r000_c000.tif") for n in names]
    )
    nuclei = segment_nuclei(image[1])
    ids, centroids = cell_centroids(nuclei)
    crops = extract_crops(image, centroids, size=48, labels=nuclei, label_ids=ids, mask_outside=True)
    assert crops.shape == (len(ids), 3, 48, 48) and len(ids) >= 100
    # Each masked crop holds its whole nucleus, centred.
    inside = (crops[:, 1] > 0).sum(axis=(1, 2))
    areas = np.bincount(nuclei.ravel())[ids]
    assert np.mean(inside == areas) > 0.95
    assert np.mean(crops[:, 1, 24, 24] > 0) > 0.95
