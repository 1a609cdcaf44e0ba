"""Video backbones wrapped with the motion prompt layer: ``build_model`` and the registry.

Importing this package registers every backbone family (x3d, slowfast, timesformer, resnet, mvit);
pytorchvideo and transformers are imported only when a backbone is built.
"""

from __future__ import annotations

import importlib

from mpbench.models._registry import BackboneInfo, get_backbone, list_backbones
from mpbench.models.model import ModelOutput, PromptedVideoModel, build_model

# each family module registers its entries on import; this order is the listing order
for _family in ("x3d", "slowfast", "timesformer", "resnet", "mvit"):
    importlib.import_module(f"mpbench.models.{_family}")

__all__ = [
    "BackboneInfo",
    "ModelOutput",
    "PromptedVideoModel",
    "build_model",
    "get_backbone",
    "list_backbones",
]
