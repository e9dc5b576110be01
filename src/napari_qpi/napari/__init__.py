"""The napari layer: manifest commands and widgets, thin over the library."""
