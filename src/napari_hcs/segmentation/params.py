"""Settings of the segmentation of a site, and :func:`segment_site`, which applies them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Sequence

import numpy as np

from ..vocabulary import SEGMENTATION_BACKENDS, SPLIT_METHODS, THRESHOLD_METHODS
from .cellpose_backend import segment_site_cellpose
from .cells import expand_nuclei, segment_cells
from .nuclei import NucleiOptions, estimate_diameter, segment_nuclei

__all__ = ["SegmentationParams", "segment_site"]


@dataclass
class SegmentationParams:
    """Settings of the segmentation of a site (saved in a project as a dict).

    Attributes
    ----------
    nuclei_channel : str
        Name of the nuclear-stain channel (e.g. ``'DAPI'``).
    cell_channel : str, optional
        Name of a cytoplasm or membrane channel; nuclei are grown by
        ``cell_expansion`` pixels when not given.
    diameter : float, optional
        Expected nucleus diameter in pixels; estimated per site when not given.
    threshold : {'otsu', 'li', 'triangle', 'manual'}
        Global threshold method of the nuclei.
    threshold_value : float, optional
        Nuclei threshold in image units for ``threshold='manual'``.
    smoothing : float
        Gaussian sigma in pixels before thresholding (both channels).
    min_area, max_area : float, optional
        Nucleus area limits in pixels (defaults follow the diameter).
    exclude_border : bool
        Drop nuclei (and their cells) touching the image border.
    split : {'distance', 'intensity', 'none'}
        How touching nuclei are split.
    max_intensity_quantile : float, optional
        Bright-artefact filter (see :func:`~napari_hcs.segmentation.segment_nuclei`);
        off by default.
    threshold_correction : float
        See :func:`~napari_hcs.segmentation.segment_nuclei`.
    local_contrast : float
        See :func:`~napari_hcs.segmentation.segment_nuclei`.
    cell_threshold : {'otsu', 'li', 'triangle', 'manual'}
        Foreground threshold method of the cell channel.
    cell_threshold_value : float, optional
        Cell-channel threshold for ``cell_threshold='manual'``.
    cell_expansion : float, optional
        Growth of nuclei into cells (pixels) without a cell channel; default
        half the nucleus diameter.
    cell_max_distance : float, optional
        Largest distance of a cell pixel from its nucleus on the cell channel.
    backend : {'classical', 'cellpose'}
        Segmentation method; 'cellpose' needs the cellpose package and local
        model weights.
    cellpose_model : str, optional
        Path of cellpose model weights (or the name of a model cellpose has
        stored locally), for ``backend='cellpose'``.

    Examples
    --------
    >>> params = SegmentationParams(nuclei_channel="DAPI", cell_channel="mCherry")
    >>> SegmentationParams.from_dict(params.to_dict()) == params
    True
    """

    nuclei_channel: str
    cell_channel: str | None = None
    diameter: float | None = None
    threshold: str = "otsu"
    threshold_value: float | None = None
    smoothing: float = 1.0
    min_area: float | None = None
    max_area: float | None = None
    exclude_border: bool = False
    split: str = "distance"
    max_intensity_quantile: float | None = None
    threshold_correction: float = 0.5
    local_contrast: float = 0.5
    cell_threshold: str = "otsu"
    cell_threshold_value: float | None = None
    cell_expansion: float | None = None
    cell_max_distance: float | None = None
    backend: str = "classical"
    cellpose_model: str | None = None

    def __post_init__(self) -> None:
        for name, value, allowed in (
            ("threshold", self.threshold, THRESHOLD_METHODS),
            ("cell_threshold", self.cell_threshold, THRESHOLD_METHODS),
            ("split", self.split, SPLIT_METHODS),
            ("backend", self.backend, SEGMENTATION_BACKENDS),
        ):
            if value not in allowed:
                raise ValueError(f"Unknown {name} {value!r}; choose one of {', '.join(allowed)}.")
        if self.diameter is not None and not self.diameter > 0:
            raise ValueError(f"diameter must be a positive number of pixels; got {self.diameter}.")

    def nuclei_options(self) -> NucleiOptions:
        """Return the options of :func:`~napari_hcs.segmentation.segment_nuclei` these settings hold."""
        return NucleiOptions(**{f.name: getattr(self, f.name) for f in fields(NucleiOptions)})

    def to_dict(self) -> dict:
        """Return the settings as a JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "SegmentationParams":
        """Build settings from a dict such as :meth:`to_dict` returns.

        Raises
        ------
        ValueError
            Naming unknown keys and the known ones.
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"Unknown segmentation setting(s) {', '.join(unknown)}; known settings are: "
                f"{', '.join(sorted(known))}."
            )
        return cls(**values)


def segment_site(
    image_cyx: np.ndarray, params: SegmentationParams, channel_names: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Segment the nuclei and cells of one site.

    Parameters
    ----------
    image_cyx : ndarray
        ``(C, Y, X)`` pixels of the site.
    params : SegmentationParams
        Channels and settings.
    channel_names : sequence of str
        Names of the channels, in the order of the channel axis.

    Returns
    -------
    nuclei, cells : ndarray of int32
        Instance labels; a cell has the id of its nucleus.

    Raises
    ------
    ValueError
        If the image is not ``(C, Y, X)`` with one plane per channel name, or
        a channel of ``params`` is missing (the message lists the channels).

    Examples
    --------
    >>> params = SegmentationParams(nuclei_channel="DAPI", cell_channel="mCherry")
    >>> nuclei, cells = segment_site(plate.read_site(plate.site("B02")), params, plate.channels)
    >>> int(nuclei.max()) == int(cells.max()) > 0
    True
    """
    image = np.asarray(image_cyx)
    if image.ndim != 3 or image.shape[0] != len(channel_names):
        raise ValueError(
            f"Expected a (C, Y, X) image with {len(channel_names)} channel(s) "
            f"({', '.join(map(str, channel_names))}); got shape {image.shape}."
        )
    nuclei_index = _channel(channel_names, params.nuclei_channel, "nuclei")
    cell_index = (
        None if params.cell_channel is None else _channel(channel_names, params.cell_channel, "cell")
    )
    if params.backend == "cellpose":
        return segment_site_cellpose(image, params, nuclei_index=nuclei_index, cell_index=cell_index)
    return _segment_site_classical(image, params, nuclei_index=nuclei_index, cell_index=cell_index)


def _channel(channel_names: Sequence[str], name: str, role: str) -> int:
    names = [str(n) for n in channel_names]
    if name in names:
        return names.index(name)
    raise ValueError(
        f"The {role} channel {name!r} is not in the image; channels are: {', '.join(names)}."
    )


def _segment_site_classical(
    image: np.ndarray, params: SegmentationParams, *, nuclei_index: int, cell_index: int | None
) -> tuple[np.ndarray, np.ndarray]:
    diameter = params.diameter
    if diameter is None and params.cell_expansion is None and cell_index is None:
        diameter = estimate_diameter(image[nuclei_index])
    nuclei = segment_nuclei(image[nuclei_index], params.nuclei_options(), diameter=diameter)
    if cell_index is None:
        expansion = params.cell_expansion
        if expansion is None:
            expansion = 0.5 * diameter
        return nuclei, expand_nuclei(nuclei, expansion)
    cells = segment_cells(
        image[cell_index],
        nuclei,
        threshold=params.cell_threshold,
        threshold_value=params.cell_threshold_value,
        smoothing=params.smoothing,
        max_distance=params.cell_max_distance,
    )
    return nuclei, cells
