"""napari layer data built from a plate site, without importing Qt or napari.

:func:`site_layer_data` turns one site of a :class:`~napari_hcs.plate.Plate`
into napari "layer data tuples" ``(data, kwargs, layer_type)``: one Image layer
per channel and one Labels layer per stored label image. Layers are named after
the channel (or label) alone, so that showing another site replaces the data of
the layers already in the viewer instead of adding new ones.

Every layer carries ``metadata`` that ties it to its plate and site:

``napari_hcs_plate``
    The :class:`~napari_hcs.plate.Plate`.
``napari_hcs_site``
    The :class:`~napari_hcs.plate.Site` shown.
``napari_hcs_role``
    ``"channel"`` or ``"labels"``.
``napari_hcs_name``
    The channel or label name (napari may add a suffix to the layer name).

:func:`apply_layer_data` puts such tuples into a viewer, updating the layers it
made before in place.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..plate import Plate, Site
from ..vocabulary import (
    CHANNEL_ROLE,
    DYE_COLORMAPS,
    LABELS_ROLE,
    META_NAME,
    META_PLATE,
    META_ROLE,
    META_SITE,
    OVERLAY_ROLE,
)

__all__ = [
    "LABELS_ROLE",
    "CHANNEL_ROLE",
    "META_NAME",
    "META_PLATE",
    "META_ROLE",
    "META_SITE",
    "apply_layer_data",
    "channel_colormap",
    "contrast_limits",
    "labels_layer_data",
    "layer_metadata",
    "put_layer_data",
    "layer_scale",
    "plate_layers",
    "site_layer_data",
]

LayerDataTuple = tuple[Any, dict, str]

#: Colormaps given in turn to channels whose name says nothing about the dye.
_FALLBACK_COLORMAPS = ("gray", "cyan", "yellow", "magenta", "green", "red", "blue")

#: Number of pixels per axis kept when estimating contrast limits.
_CONTRAST_SAMPLES_PER_AXIS = 256


def channel_colormap(name: str, index: int = 0) -> str:
    """Return a napari colormap name for a channel, guessed from its name.

    Parameters
    ----------
    name : str
        Channel name, e.g. ``"DAPI"``, ``"Alexa488"``, ``"mCherry"``.
    index : int
        Position of the channel; picks a fallback colormap when the name
        names no known dye.

    Examples
    --------
    >>> channel_colormap("DAPI"), channel_colormap("Alexa488"), channel_colormap("mCherry")
    ('blue', 'green', 'magenta')
    >>> channel_colormap("d2", 2)
    'yellow'
    """
    text = str(name).lower()
    for keywords, colormap in DYE_COLORMAPS:
        if any(word in text for word in keywords):
            return colormap
    return _FALLBACK_COLORMAPS[index % len(_FALLBACK_COLORMAPS)]


def contrast_limits(
    plane: np.ndarray, *, percentiles: tuple[float, float] = (0.5, 99.8)
) -> tuple[float, float]:
    """Return robust contrast limits of an image from a strided subsample.

    Parameters
    ----------
    plane : ndarray
        Image of any shape; only about 256 pixels per axis of the last two axes
        are looked at.
    percentiles : tuple of float
        Lower and upper percentile.

    Returns
    -------
    tuple of float
        ``(low, high)`` with ``high > low`` (a flat image gets ``(v, v + 1)``).
    """
    plane = np.asarray(plane)
    if plane.size == 0:
        return 0.0, 1.0
    steps = tuple(max(1, n // _CONTRAST_SAMPLES_PER_AXIS) for n in plane.shape[-2:])
    sample = plane[(..., slice(None, None, steps[0]), slice(None, None, steps[1]))]
    low, high = np.percentile(sample, percentiles)
    low, high = float(low), float(high)
    if high <= low:
        high = low + 1.0
    return low, high


def layer_scale(plate: Plate) -> tuple[float, float]:
    """Return the ``(y, x)`` scale of a plate's layers: its pixel size in µm, else 1."""
    size = plate.pixel_size or 1.0
    return (float(size), float(size))


def site_layer_data(
    plate: Plate,
    site: Site,
    *,
    percentiles: tuple[float, float] = (0.5, 99.8),
    labels: bool = True,
    project_labels: dict | None = None,
) -> list[LayerDataTuple]:
    """Read a site and return napari layer data tuples: channels, then stored labels.

    Parameters
    ----------
    plate : Plate
        The plate.
    site : Site
        The site to show.
    percentiles : tuple of float
        Percentiles of each channel used as its contrast limits.
    labels : bool
        Also return the site's label images: the plate's own (``plate.site_labels``)
        and ``project_labels``.
    project_labels : dict of str to ndarray, optional
        Label images kept in the project for this site (its label store), shown
        instead of the plate's own of the same name.

    Returns
    -------
    list of tuple
        ``(data, kwargs, "image")`` per channel, named after the channel, with
        additive blending, a colormap guessed from the channel name and the
        plate's pixel size as scale; then ``(labels, kwargs, "labels")`` per
        stored label image, named after it.

    Raises
    ------
    PlateError
        If the site's pixels cannot be read.
    """
    pyramid = plate.site_pyramid(site)
    multiscale = len(pyramid) > 1
    # A stored pyramid is shown lazily: napari reads only the level and tiles it draws.
    overview = np.asarray(pyramid[-1]) if multiscale else plate.read_site(site)
    scale = layer_scale(plate)
    layers: list[LayerDataTuple] = []
    for index, channel in enumerate(plate.channels):
        data = [level[index] for level in pyramid] if multiscale else overview[index]
        kwargs = {
            "name": channel,
            "colormap": channel_colormap(channel, index),
            "blending": "additive",
            "contrast_limits": contrast_limits(overview[index], percentiles=percentiles),
            "scale": scale,
            "metadata": layer_metadata(plate, site, CHANNEL_ROLE, channel),
        }
        if multiscale:
            kwargs["multiscale"] = True
        layers.append((data, kwargs, "image"))
    if labels:
        for name, label_image in {**plate.site_labels(site), **(project_labels or {})}.items():
            kwargs = {
                "name": name,
                "opacity": 0.5,
                "scale": scale,
                "metadata": layer_metadata(plate, site, LABELS_ROLE, name),
            }
            layers.append((np.asarray(label_image), kwargs, "labels"))
    return layers


def layer_metadata(plate: Plate, site: Site, role: str, name: str) -> dict:
    """Metadata tying a layer to a site of a plate: replaced or removed when another site is shown."""
    return {META_PLATE: plate, META_SITE: site, META_ROLE: role, META_NAME: name}



def plate_layers(viewer) -> list:
    """Return the layers of a viewer that show a plate site (made by this module)."""
    return [layer for layer in viewer.layers if META_ROLE in layer.metadata]


def labels_layer_data(plate: Plate, site: Site, name: str, labels: np.ndarray, *,
                      features=None) -> LayerDataTuple:
    """Return the layer data tuple of a site's label image (e.g. a segmentation preview).

    The layer is tied to the site like the image layers are, so showing another
    site removes or replaces it; ``features`` (one row per label, with an
    ``index`` column) become ``layer.features``.
    """
    kwargs = {"name": name, "opacity": 0.5, "scale": layer_scale(plate),
              "metadata": layer_metadata(plate, site, LABELS_ROLE, name)}
    if features is not None:
        kwargs["features"] = features
    return (np.asarray(labels), kwargs, "labels")


def put_layer_data(viewer, layer_data: LayerDataTuple):
    """Show one layer data tuple, updating the plate layer of the same role and name; return it."""
    existing = {_key(layer.metadata): layer for layer in plate_layers(viewer)}
    return _put(viewer, layer_data, existing.get(_key(layer_data[1]["metadata"])))


def apply_layer_data(viewer, layer_data: list[LayerDataTuple]) -> list:
    """Show layer data tuples of a site in a viewer, reusing the plate layers already there.

    A plate layer of the same role and name gets the new data, metadata and
    scale in place; its colormap and contrast limits (perhaps set by the user)
    are kept, so that sites are compared at the same contrast. Missing layers are
    added; plate layers of the previous site that the new site lacks (stored
    labels, segmentation previews) are removed. Overlay layers
    (:data:`~napari_hcs.vocabulary.OVERLAY_ROLE`) stay: whoever draws them redraws
    them for the new site.

    Parameters
    ----------
    viewer : napari.Viewer
        The viewer (anything with ``layers`` and ``add_image``/``add_labels``).
    layer_data : list of tuple
        Tuples from :func:`site_layer_data`.

    Returns
    -------
    list
        The layers now showing the site, in the order of ``layer_data``.
    """
    existing = {_key(layer.metadata): layer for layer in plate_layers(viewer)}
    shown = [_put(viewer, item, existing.pop(_key(item[1]["metadata"]), None)) for item in layer_data]
    for stale in existing.values():
        if stale.metadata.get(META_ROLE) != OVERLAY_ROLE:  # overlays are redrawn for the new site
            viewer.layers.remove(stale)
    return shown


#: Options an in-place update applies again (overlay colours change with their data);
#: image layers keep the user's colormap and contrast.
_RESTYLED = {"labels": ("colormap",), "points": ("face_color", "size", "symbol")}


def _same_colours(colormap, colours) -> bool:
    current = getattr(colormap, "color_dict", None)
    if current is None or not isinstance(colours, dict) or current.keys() != colours.keys():
        return False
    return all(np.allclose(current[key], colours[key]) for key in colours)


def _key(metadata: dict) -> tuple:
    return metadata[META_ROLE], metadata.get(META_NAME)


def _put(viewer, layer_data: LayerDataTuple, layer):
    data, kwargs, layer_type = layer_data
    if layer is not None and type(layer).__name__.lower() == layer_type:
        layer.data = data
        layer.metadata = dict(kwargs["metadata"])
        if "features" in kwargs:
            layer.features = kwargs["features"]
        for key in _RESTYLED.get(layer_type, ()):
            if key in kwargs and not (key == "colormap" and _same_colours(layer.colormap, kwargs[key])):
                setattr(layer, key, kwargs[key])
        if tuple(layer.scale) != tuple(kwargs["scale"]):  # setting it redraws: only on change
            layer.scale = kwargs["scale"]
        return layer
    if layer is not None:
        viewer.layers.remove(layer)
    return getattr(viewer, f"add_{layer_type}")(data, **kwargs)
