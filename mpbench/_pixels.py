"""Pixel conventions, defined once: the normalisation of frames and the grey weights (no torch).

Frames reach the prompt layer and the backbone as ``(x / 255 - MEAN) / STD`` on every channel
(the Kinetics statistics of pytorchvideo's models); the layer's grey image weighs R, G and B with
the ITU-R BT.601 luma weights, as the authors' ``vmps.py`` does. The data pipeline, the prompt
layer, the probe and the figures import these values.
"""

from __future__ import annotations

from typing import Final

MEAN: Final = 0.45
STD: Final = 0.225
GREY_WEIGHTS: Final = (0.299, 0.587, 0.114)  # R, G, B
