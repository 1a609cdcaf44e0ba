"""The pytorchvideo and torchvision pieces mpbench relies on, listed once.

pytorchvideo pins old torchvision releases and torchvision keeps removing modules (its video
decoding, ``torchvision.transforms.functional_tensor``), so a new release of either can break
mpbench at import time, deep inside a trial. ``tests/test_dependency_imports.py`` imports every
piece listed here, and checks that every ``pytorchvideo`` / ``torchvision`` import in mpbench's
code is listed, so that such a release fails CI with one message naming the module and the name.
"""

from __future__ import annotations

import importlib
from typing import Final

# module -> the names mpbench takes from it (where it uses them: the comment)
USED: Final[dict[str, tuple[str, ...]]] = {
    "pytorchvideo.models.x3d": ("create_x3d",),  # models/x3d.py
    "pytorchvideo.models.slowfast": ("create_slowfast",),  # models/slowfast.py
    "pytorchvideo.models.vision_transformers": (  # models/mvit.py
        "create_multiscale_vision_transformers",
    ),
    "pytorchvideo.models.resnet": ("create_resnet",),  # models/resnet.py (by name)
    "pytorchvideo.models.r2plus1d": ("create_r2plus1d",),
    "pytorchvideo.models.csn": ("create_csn",),
    "pytorchvideo.data.encoded_video": ("EncodedVideo",),  # bench/decoders.py
    "torchvision": ("__version__",),  # data/cache.py (the cache header)
    "torchvision.tv_tensors": ("Video",),  # data/transforms.py
    "torchvision.transforms.v2": (
        "CenterCrop",
        "Compose",
        "RandomHorizontalFlip",
        "RandomResizedCrop",
        "Resize",
        "Transform",
        "functional",
    ),
    "torchvision.transforms.v2.functional": ("resize",),  # transforms.py, bench/decoders.py
}


def versions() -> str:
    """``pytorchvideo X, torchvision Y, torch Z`` as installed (``missing`` when not)."""
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for name in ("pytorchvideo", "torchvision", "torch"):
        try:
            out.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            out.append(f"{name} missing")
    return ", ".join(out)


def broken_imports() -> list[str]:
    """One line per module of :data:`USED` that does not import or lacks a name, saying what
    failed, why, and the installed versions."""
    out = []
    for module, names in USED.items():
        try:
            mod = importlib.import_module(module)
        except Exception as exc:  # any import-time failure is the message
            out.append(f"cannot import {module}: {type(exc).__name__}: {exc} ({versions()})")
            continue
        missing = [n for n in names if not hasattr(mod, n)]
        if missing:
            out.append(f"{module} has no {', '.join(missing)} ({versions()})")
    return out
