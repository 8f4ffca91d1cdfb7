"""Qt-free viewer state: the session every widget shares, and layer data as plain arrays."""

from .layers import apply_layer_data, site_layer_data

__all__ = ["apply_layer_data", "site_layer_data"]
