"""strided.viz: seeing inside a trained network.

* :func:`plot_filters` -- the filters of a conv layer as small images
* :func:`feature_maps` / :func:`plot_activations` -- what a layer outputs for one image
* :func:`receptive_field` -- which input pixels a unit of a layer sees
* :func:`top_patches` / :func:`plot_top_patches` -- the image patches that excite a
  unit most, over a data set (Zeiler and Fergus, "Visualizing and understanding
  convolutional networks", 2014)

Layers are named as in ``model.named_modules()`` (``strided viz layers RUN_DIR``
lists them).  Bad names and units raise :class:`VizError` (a ValueError) saying
what is valid.  Command line: ``strided viz filters | activations | top-patches | layers``.

>>> from strided import models, viz
>>> model = models.create("lenet5", input_size=28)
>>> viz.plot_filters(model, "filters.png")
>>> viz.receptive_field(model, "features.3").size
(14, 14)
"""
from .capture import VizError, conv_layers, feature_maps, get_layer, layer_output
from .patches import Patch, cut_patch, top_patches, top_patches_for_units
from .plots import plot_activations, plot_filters, plot_top_patches
from .receptive import ReceptiveField, receptive_field, receptive_fields

__all__ = ["VizError", "conv_layers", "get_layer", "feature_maps", "layer_output", "plot_filters",
           "plot_activations", "receptive_field", "receptive_fields", "ReceptiveField", "Patch", "top_patches",
           "top_patches_for_units", "cut_patch", "plot_top_patches"]
