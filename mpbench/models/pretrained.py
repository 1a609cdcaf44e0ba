"""Published weights: find them in the local caches, read them safely, load them into a backbone.

Nothing is downloaded here (:mod:`mpbench.models.fetch` does that). pytorchvideo's files are
looked up where ``torch.hub`` caches them (``torch.hub.get_dir()/checkpoints/<file>``),
TimeSformer in the Hugging Face hub cache; a missing file is a FileNotFoundError that names the
address to download and the place to put it.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

from mpbench.models._registry import BackboneInfo

HF_FILES = ("model.safetensors", "pytorch_model.bin")
_NESTED_KEYS = ("model_state", "state_dict", "model")  # pytorchvideo, lightning, plain dumps


def torch_hub_checkpoint(filename: str) -> Path:
    """Where ``torch.hub.load_state_dict_from_url`` keeps ``filename``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / filename


def find_checkpoint(info: BackboneInfo) -> Path:
    """The cached file of ``info``'s published weights; FileNotFoundError says how to get it."""
    ckpt = info.checkpoint
    if ckpt.source == "pytorchvideo":
        path = torch_hub_checkpoint(ckpt.filename)
        if path.is_file():
            return path
        where = f"put it at {path}"
    else:
        from huggingface_hub import constants, try_to_load_from_cache

        for filename in HF_FILES:
            found = try_to_load_from_cache(ckpt.repo, filename)
            if isinstance(found, str):
                return Path(found)
        where = (
            f"run `hf download {ckpt.repo}` where there is internet and copy the Hugging Face "
            f"cache to {constants.HF_HUB_CACHE}"
        )
    raise FileNotFoundError(
        f"pretrained weights of {info.name!r} are not in the local cache and nothing can be "
        f"downloaded offline: run `mpbench weights fetch {info.name}` where there is internet, "
        f"or download {ckpt.url} and {where}, or pass weights=PATH"
    )


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """The tensors of a checkpoint file (``torch.load(weights_only=True)`` or safetensors)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {str(path)!r} does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as exc:
        raise ValueError(
            f"{str(path)!r} is not a torch checkpoint loadable with weights_only=True: {exc}"
        ) from exc
    for key in _NESTED_KEYS:
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    if not (isinstance(obj, Mapping) and obj and all(isinstance(v, Tensor) for v in obj.values())):
        raise ValueError(
            f"{str(path)!r} holds no state dict: expected {{'model_state': {{name: tensor}}}} "
            f"(pytorchvideo) or {{name: tensor}}; got {type(obj).__name__}"
        )
    return dict(obj)


def head_keys(net: nn.Module, classifier: str) -> list[str]:
    """State-dict keys of the classification head: the module ``classifier`` of ``net``, as the
    backbone's registry entry declares it (``BackboneInfo.classifier``)."""
    try:
        head = net.get_submodule(classifier)
    except AttributeError:
        raise ValueError(
            f"{type(net).__name__} has no classifier module {classifier!r}: fix the "
            f"registry entry's classifier="
        ) from None
    return [f"{classifier}.{p}" for p, _ in head.named_parameters()]


def load_weights(
    backbone: nn.Module, state: Mapping[str, Tensor], *, info: BackboneInfo
) -> list[str]:
    """Load ``state`` into ``backbone.net``; a head of another class count stays new.

    Returns the head keys that were left at their fresh initialisation (empty when the checkpoint's
    head fits). Any other missing, unexpected or misshapen tensor is a ValueError.
    """
    net = backbone.net
    own = net.state_dict()
    state = dict(state)
    adapt = getattr(backbone, "adapt_state", None)
    if adapt is not None:  # e.g. TimeSformer interpolates its position and time embeddings
        state = adapt(state)
    fresh = [
        k for k in head_keys(net, info.classifier) if k in state and state[k].shape != own[k].shape
    ]
    for key in fresh:
        del state[key]
    bad = [k for k in state if k in own and state[k].shape != own[k].shape]
    if bad:
        shapes = "; ".join(
            f"{k}: file {tuple(state[k].shape)}, model {tuple(own[k].shape)}" for k in bad[:3]
        )
        ckpt = info.checkpoint
        raise ValueError(
            f"{info.name}: the weights do not fit the model as built ({shapes}); the published "
            f"weights were trained at frames={ckpt.frames}, crop={ckpt.crop}"
        )
    missing, unexpected = net.load_state_dict(state, strict=False)
    missing = [k for k in missing if k not in fresh]
    if missing or unexpected:
        raise ValueError(
            f"{info.name}: the weights are not a {info.name} state dict "
            f"({len(missing)} missing, e.g. {missing[:3]}; {len(unexpected)} unexpected, "
            f"e.g. {unexpected[:3]})"
        )
    return fresh
