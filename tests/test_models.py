"""The backbone registry, PromptedVideoModel, pretrained loading and ``mpbench list backbones``."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

from mpbench.cli import app
from mpbench.models import PromptedVideoModel, build_model, get_backbone, list_backbones
from mpbench.models.pretrained import head_keys, torch_hub_checkpoint
from mpbench.models.slowfast import SlowFastBackbone
from mpbench.models.summary import build_on_meta, summarize_backbone

BACKBONES = [info.name for info in list_backbones()]
T, CROP, B, CLASSES = 8, 64, 2, 5


def _clip(batch: int = B, frames: int = T + 1, crop: int = CROP) -> torch.Tensor:
    return torch.randn(batch, 3, frames, crop, crop, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("variant", ["baseline", "learnable_tav"])
@pytest.mark.parametrize("backbone", BACKBONES)
def test_tiny_forward_backward(backbone: str, variant: str) -> None:
    torch.manual_seed(0)
    model = build_model(backbone, variant=variant, num_classes=CLASSES, frames=T, crop=CROP)
    seen = []
    model.backbone.register_forward_hook(lambda m, args, out: seen.append(args[0]))
    x = _clip()
    out = model(x, return_attention=True)
    loss = F.cross_entropy(out.logits, torch.tensor([0, 3])) + out.reg_loss
    loss.backward()

    assert isinstance(model, PromptedVideoModel)
    assert out.logits.shape == (B, CLASSES) and torch.isfinite(out.logits).all()
    # T + 1 frames in, T frames into the backbone, in the layout it wants
    layout = get_backbone(backbone).info.layout
    want = (B, 3, T, CROP, CROP) if layout == "BCTHW" else (B, T, 3, CROP, CROP)
    assert tuple(seen[0].shape) == want
    grads = [p.grad for p in model.backbone_parameters() if p.grad is not None]
    assert grads and any(g.abs().sum() > 0 for g in grads)
    if variant == "baseline":
        fed = seen[0] if layout == "BCTHW" else seen[0].transpose(1, 2)
        assert torch.equal(fed, x[:, :, 1:])  # the baseline drops the first frame
        assert out.attention is None and out.reg_loss.item() == 0.0
        assert list(model.prompt_parameters()) == []
    else:
        assert out.attention.shape == (B, T, CROP, CROP)
        assert out.reg_loss.item() > 0.0
        prompt_grads = [p.grad for p in model.prompt_parameters()]
        assert prompt_grads and all(g is not None and g.abs().sum() > 0 for g in prompt_grads)


@pytest.mark.parametrize("alpha", [2, 4])
def test_slowfast_pathways_take_every_alpha_th_prompt_frame(alpha: int) -> None:
    model = build_model(
        "slowfast_r50", variant="baseline", num_classes=CLASSES, frames=T, crop=CROP, alpha=alpha
    )
    assert isinstance(model.backbone, SlowFastBackbone)
    seen = []
    # a pre-hook and a copy: pytorchvideo replaces the list's items in place as it runs
    model.backbone.net.register_forward_pre_hook(lambda m, args: seen.append(list(args[0])))
    x = _clip()
    model.eval()(x)
    slow, fast = seen[0]
    assert torch.equal(fast, x[:, :, 1:])  # fast: all T prompt frames
    assert slow.shape[2] == T // alpha
    assert torch.equal(slow, x[:, :, 1:][:, :, ::alpha])  # slow: prompt frames 0, alpha, ...
    frame_ids = torch.arange(T).view(1, 1, T, 1, 1).float()
    assert model.backbone.pathways(frame_ids)[0].flatten().tolist() == list(range(0, T, alpha))


# Each registration declares its published parameter count (400 classes, BackboneInfo.params_m):
# pytorchvideo's model zoo (0.01M), the X3D paper (0.1M) and the TimeSformer paper (121.4M). A
# 0.5% tolerance covers the rounding of a figure given to 0.1M (X3D 3.79M vs "3.8M": 0.3%) and
# TimeSformer's transformers implementation (121.57M vs 121.4M: 0.14%); a wrong width, depth or
# head would be off by far more.
@pytest.mark.parametrize("backbone", BACKBONES)
def test_full_size_parameters_match_published(backbone: str) -> None:
    summary = summarize_backbone(backbone, size="full", num_classes=400)  # built on the meta device
    assert summary.params / 1e6 == pytest.approx(get_backbone(backbone).info.params_m, rel=0.005)


def test_meta_count_equals_a_real_build() -> None:
    real = get_backbone("x3d_xs").build(size="full", num_classes=400, frames=4, crop=160)
    assert summarize_backbone("x3d_xs", size="full").params == sum(
        p.numel() for p in real.parameters()
    )


def test_flops_follow_the_input_size() -> None:
    small = summarize_backbone("x3d_s", size="full", frames=13, crop=160)
    # X3D-S at 13 x 160^2: 1.96 GMACs as pytorchvideo's model zoo publishes (fvcore counts MACs)
    assert small.gmacs == pytest.approx(1.96, abs=0.01)
    assert small.gflops == pytest.approx(2 * small.gmacs)
    big = summarize_backbone("x3d_s", size="full", frames=26, crop=160)
    assert big.flops == pytest.approx(2 * small.flops, rel=0.02)


@pytest.mark.parametrize(
    ("backbone", "kwargs", "match"),
    [
        ("x3d_q", {}, r"unknown backbone 'x3d_q'\. Did you mean 'x3d_s'"),
        ("slowfast_r50", {"frames": 6}, r"frames=6 must be a multiple of 4 \(the slow pathway"),
        ("slowfast_r50", {"alpha": 3}, r"frames=8 must be a multiple of 3"),
        ("timesformer", {"crop": 72}, r"crop=72 must be a multiple of 16 \(the patch size"),
        ("mvit_b", {"frames": 7}, r"frames=7 must be a multiple of 2 .*try frames=8"),
        ("x3d_xs", {"crop": 16}, r"x3d_xs: crop=16 is too small; it must be >= 32"),
        ("csn_r101", {"frames": 4}, r"frames=4 is too small; it must be >= 8 \(the total tempo"),
        ("r2plus1d_r50", {"size": "medium"}, r"size='medium' is not one of \['tiny', 'full'\]"),
        ("slow_r50", {"num_classes": 0}, r"num_classes must be a positive int; got 0"),
    ],
)
def test_sizes_a_backbone_cannot_take(backbone: str, kwargs: dict, match: str) -> None:
    args = {"variant": "baseline", "num_classes": CLASSES, "frames": T, "crop": CROP} | kwargs
    with pytest.raises(ValueError, match=match):
        build_model(backbone, **args)


def test_unknown_backbone_option_is_a_type_error() -> None:
    with pytest.raises(TypeError, match=r"x3d_xs takes no option 'alpha'; its options: none"):
        build_model("x3d_xs", variant="baseline", num_classes=2, frames=T, crop=CROP, alpha=2)
    with pytest.raises(TypeError, match=r"takes no option 'beta'; its options: alpha=4"):
        build_model("slowfast_r50", variant="baseline", num_classes=2, frames=T, crop=CROP, beta=1)


def test_input_frame_count_is_checked() -> None:
    model = build_model("x3d_xs", variant="learnable_tav", num_classes=2, frames=T, crop=CROP)
    with pytest.raises(ValueError, match=r"B x 3 x 9 x 64 x 64 .* got shape \(2, 3, 8, 64, 64\)"):
        model(_clip(frames=T))


@pytest.fixture
def hub_dir(tmp_path, monkeypatch):
    """A fresh, empty torch hub cache; afterwards the hub folder follows TORCH_HOME again
    (restoring it with set_dir(old) would pin it for every later test of the process)."""
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))
    return tmp_path / "hub"


def _save_x3d_xs_checkpoint() -> dict[str, torch.Tensor]:
    """A full X3D-XS saved where torch.hub caches X3D_XS.pyth, in pytorchvideo's format."""
    torch.manual_seed(1)
    state = get_backbone("x3d_xs").build(size="full", num_classes=400, frames=4, crop=160)
    state = state.net.state_dict()
    path = torch_hub_checkpoint("X3D_XS.pyth")
    path.parent.mkdir(parents=True)
    torch.save({"model_state": state, "model_epoch": 300}, path)
    return state


FAMILIES = {info.family: info.name for info in reversed(list_backbones())}  # first of each


@pytest.mark.parametrize("backbone", sorted(FAMILIES.values()))
def test_declared_classifier_is_the_head_a_weights_file_replaces(tmp_path, backbone: str) -> None:
    classifier = get_backbone(backbone).info.classifier
    args = {"variant": "baseline", "frames": T, "crop": CROP}
    torch.manual_seed(0)
    source = build_model(backbone, num_classes=3, **args).backbone.net
    torch.save(source.state_dict(), tmp_path / "w.pt")
    model = build_model(backbone, num_classes=7, weights=tmp_path / "w.pt", **args)
    net = model.backbone.net
    assert net.get_submodule(classifier).out_features == 7
    head = set(head_keys(net, classifier))
    assert head == {f"{classifier}.weight", f"{classifier}.bias"}
    saved, loaded = source.state_dict(), net.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in saved.items() if k not in head)
    assert model(_clip(batch=1)).logits.shape == (1, 7)


def test_an_undeclared_classifier_is_named() -> None:
    net = build_model("x3d_xs", variant="baseline", num_classes=2, frames=T, crop=CROP)
    with pytest.raises(ValueError, match=r"no classifier module 'blocks.9.proj'"):
        head_keys(net.backbone.net, "blocks.9.proj")


@pytest.mark.parametrize("num_classes", [400, 10])
def test_pretrained_loads_the_cached_checkpoint(hub_dir, num_classes: int) -> None:
    saved = _save_x3d_xs_checkpoint()
    torch.manual_seed(2)
    model = build_model(
        "x3d_xs", variant="baseline", num_classes=num_classes, frames=4, crop=160, size="full",
        pretrained=True,
    )  # fmt: skip
    loaded = model.backbone.net.state_dict()
    head = head_keys(model.backbone.net, get_backbone("x3d_xs").info.classifier)
    assert head == ["blocks.5.proj.weight", "blocks.5.proj.bias"]
    for key, value in saved.items():
        if key in head and num_classes != 400:
            assert loaded[key].shape[0] == num_classes  # a new head for the new class count
        else:
            assert torch.equal(loaded[key], value), key
    out = model.eval()(torch.zeros(1, 3, 5, 160, 160))
    assert out.logits.shape == (1, num_classes)


def test_pretrained_offline_without_the_file_names_url_and_place(hub_dir) -> None:
    where = str(hub_dir / "checkpoints" / "X3D_XS.pyth")
    url = "https://dl.fbaipublicfiles.com/pytorchvideo/model_zoo/kinetics/X3D_XS.pyth"
    with pytest.raises(FileNotFoundError, match=rf"download {url} and put it at {where}"):
        build_model(
            "x3d_xs", variant="baseline", num_classes=2, frames=4, crop=160, size="full",
            pretrained=True,
        )  # fmt: skip


def test_pretrained_timesformer_missing_names_the_hf_repo(monkeypatch, tmp_path) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"facebook/timesformer-base-finetuned-k400"):
        build_model(
            "timesformer", variant="baseline", num_classes=2, frames=8, crop=224, size="full",
            pretrained=True,
        )  # fmt: skip


def test_pretrained_needs_the_full_size() -> None:
    with pytest.raises(ValueError, match=r"published weights exist for size='full' only"):
        build_model(
            "x3d_s", variant="baseline", num_classes=2, frames=T, crop=CROP, pretrained=True
        )


def test_weights_file_resizes_timesformer_embeddings(tmp_path) -> None:
    source = build_model("timesformer", variant="baseline", num_classes=3, frames=T, crop=CROP)
    path = tmp_path / "own.pt"
    torch.save(source.backbone.net.state_dict(), path)
    model = build_model(
        "timesformer", variant="learnable_tav", num_classes=3, frames=4, crop=32, weights=path
    )
    loaded, saved = model.backbone.net.state_dict(), source.backbone.net.state_dict()
    embed = "timesformer.embeddings."
    assert loaded[embed + "time_embeddings"].shape == (1, 4, 64)
    assert loaded[embed + "position_embeddings"].shape == (1, 1 + 2 * 2, 64)
    key = "timesformer.encoder.layer.1.attention.attention.qkv.weight"
    assert torch.equal(loaded[key], saved[key])
    assert model(_clip(frames=5, crop=32)).logits.shape == (B, 3)


class _NotATensor:
    pass


def test_weights_that_are_not_a_matching_state_dict(tmp_path) -> None:
    args = {"variant": "baseline", "num_classes": 2, "frames": T, "crop": CROP}
    unsafe = tmp_path / "unsafe.pt"
    torch.save({"model_state": _NotATensor()}, unsafe)
    with pytest.raises(ValueError, match=r"not a torch checkpoint loadable with weights_only"):
        build_model("x3d_xs", weights=unsafe, **args)
    other = tmp_path / "slow.pyth"
    torch.save({"model_state": build_model("slow_r50", **args).backbone.net.state_dict()}, other)
    with pytest.raises(ValueError, match=r"x3d_xs: the weights do not fit|not a x3d_xs state"):
        build_model("x3d_xs", weights=other, **args)
    with pytest.raises(FileNotFoundError, match=r"weights file '.*nope.pt' does not exist"):
        build_model("x3d_xs", weights=tmp_path / "nope.pt", **args)


def test_list_backbones_cli() -> None:
    result = CliRunner().invoke(app, ["list", "backbones", "--size", "tiny", "--crop", "72"])
    assert result.exit_code == 0, result.output
    for name in BACKBONES:
        assert name in result.output
    assert "GFLOPs" in result.output and "2 FLOPs per multiply-accumulate" in result.output
    assert "crop=72 must be a multiple of 16" in " ".join(result.output.split())


def test_list_backbones_info() -> None:
    infos = {info.name: info for info in list_backbones()}
    assert all(info.params_m > 0 for info in infos.values())  # each declares its count
    assert infos["timesformer"].layout == "BTCHW" and infos["x3d_s"].defaults["full"] == (13, 160)
    assert infos["slowfast_r50"].options == ("alpha",)
    assert all(info.sizes == ("tiny", "full") and info.description for info in infos.values())
    assert math.isclose(summarize_backbone("mvit_b", size="tiny").gflops or 0, 0.078, rel_tol=0.05)


@pytest.mark.parametrize(
    ("backbone", "frames", "crop"),
    [
        ("x3d_s", 13, 112),
        ("slowfast_r50", 12, 96),
        ("timesformer", 6, 96),
        ("slow_r50", 5, 100),
        ("r2plus1d_r50", 6, 112),
        ("csn_r101", 12, 72),
        ("mvit_b", 10, 100),
    ],
)
def test_pooling_and_embeddings_adapt_to_the_input(backbone: str, frames: int, crop: int) -> None:
    model = build_model(backbone, variant="learnable", num_classes=3, frames=frames, crop=crop)
    out = model.eval()(_clip(batch=1, frames=frames + 1, crop=crop))
    assert out.logits.shape == (1, 3) and torch.isfinite(out.logits).all()


@pytest.mark.parametrize("backbone", BACKBONES)
def test_full_size_runs_at_its_standard_input(backbone: str) -> None:
    """Shapes only, on the meta device: no memory, no compute."""
    info = get_backbone(backbone).info
    frames, crop = info.defaults["full"]
    net = build_on_meta(backbone, size="full", num_classes=400, frames=frames, crop=crop)
    shape = (1, 3, frames, crop, crop) if info.layout == "BCTHW" else (1, frames, 3, crop, crop)
    assert net.eval()(torch.zeros(shape, device="meta")).shape == (1, 400)
