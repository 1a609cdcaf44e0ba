"""Every pytorchvideo and torchvision piece mpbench uses imports (mpbench/_imports.py)."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

from mpbench._imports import USED, broken_imports

PACKAGE = Path(__file__).resolve().parents[1] / "mpbench"
IMPORT = re.compile(r"^\s*(?:from\s+((?:pytorchvideo|torchvision)[\w.]*)\s+import\s+([\w, ]+)"
                    r"|import\s+((?:pytorchvideo|torchvision)[\w.]*))", re.M)  # fmt: skip
DYNAMIC = re.compile(r"import_module\(f\"(pytorchvideo\.[\w.]*)\{")


def _imports_in_code() -> set[tuple[str, str]]:
    """(module, name) of every static pytorchvideo / torchvision import under mpbench/."""
    found = set()
    for path in PACKAGE.rglob("*.py"):
        for m in IMPORT.finditer(path.read_text(encoding="utf-8")):
            if m.group(3):
                found.add((m.group(3), ""))
            else:
                found |= {(m.group(1), n.split(" as ")[0].strip()) for n in m.group(2).split(",")}
    return found


def test_every_pytorchvideo_and_torchvision_import_of_mpbench_is_listed() -> None:
    found = _imports_in_code()
    assert ("pytorchvideo.models.x3d", "create_x3d") in found  # the scan sees the imports
    listed = {(mod, name) for mod, names in USED.items() for name in ("", *names)}
    missing = sorted(
        f"{mod}.{name}" if name else mod
        for mod, name in found
        if (mod, name) not in listed and f"{mod}.{name}" not in USED
    )
    assert not missing, f"add these to mpbench/_imports.py USED: {missing}"
    # the names resolved at run time (pytorchvideo.models.{kind}) are listed too
    resnet = (PACKAGE / "models" / "resnet.py").read_text(encoding="utf-8")
    assert DYNAMIC.search(resnet)
    kinds = re.search(r"kind: Literal\[([^\]]+)\]", resnet).group(1)
    for kind in re.findall(r"\"(\w+)\"", kinds):
        assert USED.get(f"pytorchvideo.models.{kind}") == (f"create_{kind}",), kind


def test_every_listed_piece_imports() -> None:
    with warnings.catch_warnings():  # pytorchvideo's import-time deprecation notes
        warnings.simplefilter("ignore")
        broken = broken_imports()
    assert not broken, "\n".join(broken)


def test_a_missing_piece_is_named_with_the_versions(monkeypatch) -> None:
    import mpbench._imports as imports

    fake = {"torchvision.transforms.functional_tensor": ("rgb_to_grayscale",),
            "torchvision.transforms.v2": ("NoSuchTransform",)}  # fmt: skip
    monkeypatch.setattr(imports, "USED", fake)
    broken = imports.broken_imports()
    assert broken[0].startswith(
        "cannot import torchvision.transforms.functional_tensor: ModuleNotFoundError: No module"
    )
    assert broken[1].startswith("torchvision.transforms.v2 has no NoSuchTransform (pytorchvideo ")
    assert "torchvision " in broken[1] and len(broken) == 2
