"""napari dock widgets of napari-hcs (Qt); the core library never imports this package.

``plate_widget.PlateWidget``
    The "Plate map": open a plate, browse wells and sites, label wells by class.
"""
