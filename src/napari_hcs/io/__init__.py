"""Plate readers and the writer, layout tables, and the one label store.

:func:`open_plate` is the one entry point: it recognises OME-Zarr plates, folders
of TIFFs named by a pattern, single multichannel TIFFs and lists of per-channel
TIFFs, and attaches a layout table (given, or found in the plate folder).
:func:`write_plate` writes any plate as an OME-Zarr HCS plate (NGFF 0.4 or 0.5,
metadata through ome-zarr-py). :class:`LabelStore` keeps the segmentation labels
of each site in the project folder.
"""

from .labels import LabelStore, label_dtype, read_label_image, site_key, write_label_image
from .layout import LAYOUT_TABLE_NAMES, attach_layout, find_layout_table, read_layout_table, write_layout_table
from .ngff import NGFF_FORMATS, is_ome_zarr_plate
from .ome_zarr_reader import open_ome_zarr_plate
from .ome_zarr_writer import PlateStoreSpec, create_plate_store, write_plate, write_site, write_site_labels
from .opener import open_plate
from .tiff_axes import tcyx_shape, to_tcyx
from .tiff_folder import PRESETS

__all__ = [
    "LAYOUT_TABLE_NAMES",
    "LabelStore",
    "NGFF_FORMATS",
    "PRESETS",
    "PlateStoreSpec",
    "attach_layout",
    "create_plate_store",
    "find_layout_table",
    "is_ome_zarr_plate",
    "label_dtype",
    "open_ome_zarr_plate",
    "open_plate",
    "read_label_image",
    "read_layout_table",
    "site_key",
    "tcyx_shape",
    "to_tcyx",
    "write_label_image",
    "write_layout_table",
    "write_plate",
    "write_site",
    "write_site_labels",
]
