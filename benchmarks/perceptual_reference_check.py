"""LPIPS and DISTS of facesketch.evaluation.perceptual against the reference packages, same weights.

    python benchmarks/perceptual_reference_check.py --reference-python /tmp/refvenv/bin/python

The reference side runs in a separate interpreter that has PyTorch, torchvision and the reference
packages (the project does not depend on them):

    python3 -m venv /tmp/refvenv
    /tmp/refvenv/bin/pip install --no-deps "torch==2.13.0+cpu" torchvision==0.28.0
    /tmp/refvenv/bin/pip install filelock typing-extensions sympy networkx jinja2 fsspec numpy pillow scipy tqdm
    /tmp/refvenv/bin/pip install --no-deps lpips==0.1.4 DISTS-pytorch==0.1

The backbones are random (seeded, tests/perceptual_fixtures.py: He-normal VGG16 and AlexNet in
torchvision's layout), since the ImageNet ones cannot be downloaded here; the linear layers and
DISTS' alpha/beta are the packages' real files. Both sides get identical arrays: the reference
side loads them into ``lpips.LPIPS(net=..., version='0.1', pnet_rand=True)`` and
``DISTS_pytorch.DISTS()`` (its torchvision.models.vgg16 built with weights=None instead of
downloading) and writes its values; this side computes the same pairs and prints both and the
largest absolute difference. Two concessions to this CPU-only machine, neither touching the
arithmetic: torchvision's PyPI wheel is CUDA-built, so its C ops (nms and the like, unused here)
cannot load and their meta registrations are skipped; and DISTS' ``pretrained=True`` download is
replaced by the random backbone.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from perceptual_fixtures import (  # noqa: E402 - the tests folder is put on sys.path just above
    BACKBONE_SEEDS,
    FIXTURES,
    PAIR_SETS,
    image_pairs,
    random_backbone,
)

TOLERANCE = 1e-4


def reference_side(out: Path) -> None:
    """In the reference interpreter: the packages' LPIPS and DISTS of every pair set."""
    import types

    sys.modules["torchvision._meta_registrations"] = types.ModuleType("torchvision._meta_registrations")
    import DISTS_pytorch.DISTS_pt as dists_pt
    import lpips
    import torch
    import torchvision

    torch.set_num_threads(2)
    backbones = {net: random_backbone(net, seed) for net, seed in BACKBONE_SEEDS.items()}

    def load_backbone(module, net, prefixes):
        state = {}
        for name, _ in module.named_parameters():
            parts = name.split(".")
            if len(parts) >= 3 and parts[-3].startswith(prefixes):
                index, kind = parts[-2], parts[-1]
                state[name] = torch.from_numpy(backbones[net][f"features.{index}.{kind}"])
        missing = module.load_state_dict(state, strict=False)
        assert not [k for k in missing.missing_keys if k.endswith(("weight", "bias")) and "lin" not in k
                    and "alpha" not in k], missing

    models = {}
    for net, tv_net in (("vgg", "vgg16"), ("alex", "alexnet")):
        m = lpips.LPIPS(net=net, version="0.1", pnet_rand=True, verbose=False)  # lin layers: the package's v0.1
        load_backbone(m.net, tv_net, ("slice",))
        models[f"lpips_{net}"] = m.eval()
    dists_pt.models = types.SimpleNamespace(vgg16=lambda *a, **k: torchvision.models.vgg16(weights=None))
    d = dists_pt.DISTS(load_weights=False)
    ab = torch.load(FIXTURES / "DISTS-weights.pt")  # the package's weights.pt (sys.prefix lookup avoided)
    d.alpha.data, d.beta.data = ab["alpha"], ab["beta"]
    load_backbone(d, "vgg16", ("stage",))
    models["dists"] = d.eval()

    values = {}
    for n, h, w, seed in PAIR_SETS:
        a, b = image_pairs(n, h, w, seed)
        x = torch.from_numpy(a).permute(0, 3, 1, 2).float() / 255.0
        y = torch.from_numpy(b).permute(0, 3, 1, 2).float() / 255.0
        with torch.no_grad():
            row = {"lpips_vgg": models["lpips_vgg"](x, y, normalize=True).flatten().tolist(),
                   "lpips_alex": models["lpips_alex"](x, y, normalize=True).flatten().tolist(),
                   "dists": models["dists"](x, y).flatten().tolist()}
        values[f"{n}x{h}x{w}/{seed}"] = row
    out.write_text(json.dumps({"torch": torch.__version__, "torchvision": torchvision.__version__,
                               "values": values}, indent=1))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reference-python", default="/tmp/refvenv/bin/python")
    ap.add_argument("--reference-side", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--json", type=Path, help="also write the values here")
    args = ap.parse_args()
    if args.reference_side:
        reference_side(args.reference_side)
        return 0

    from facesketch.evaluation import perceptual
    from facesketch.evaluation.perceptual import read_weights

    with tempfile.TemporaryDirectory() as tmp:
        ref_file = Path(tmp) / "reference.json"
        subprocess.run([args.reference_python, __file__, "--reference-side", str(ref_file)], check=True)
        ref = json.loads(ref_file.read_text())
    backbones = {net: random_backbone(net, seed) for net, seed in BACKBONE_SEEDS.items()}
    lin = {net: read_weights(FIXTURES / f"lpips-v0.1-{net}.pth") for net in ("vgg", "alex")}
    ab = read_weights(FIXTURES / "DISTS-weights.pt")
    print(f"reference: lpips 0.1.4, DISTS_pytorch 0.1, torch {ref['torch']}, torchvision {ref['torchvision']}; "
          "random backbones (seeded), the packages' linear layers and alpha/beta\n")
    print("| pairs | pair | metric | reference | facesketch | abs diff |\n|---|---:|---|---:|---:|---:|")
    worst, count, ours_all = 0.0, 0, {}
    for n, h, w, seed in PAIR_SETS:
        key = f"{n}x{h}x{w}/{seed}"
        a, b = image_pairs(n, h, w, seed)
        x, y = a.astype(np.float32) / 255.0, b.astype(np.float32) / 255.0
        ours = {"lpips_vgg": perceptual.lpips_distance(x, y, backbones["vgg16"], lin["vgg"], "vgg16"),
                "lpips_alex": perceptual.lpips_distance(x, y, backbones["alexnet"], lin["alex"], "alexnet"),
                "dists": perceptual.dists_distance(x, y, backbones["vgg16"], ab)}
        ours_all[key] = {k: v.tolist() for k, v in ours.items()}
        for metric, theirs in ref["values"][key].items():
            for i, t in enumerate(theirs):
                diff = abs(float(ours[metric][i]) - t)
                worst = max(worst, diff)
                print(f"| {key} | {i} | {metric} | {t:.7f} | {ours[metric][i]:.7f} | {diff:.1e} |")
        count += n
    print(f"\n{count} image pairs x 3 metrics; max abs diff {worst:.2e} (tolerance {TOLERANCE:g}): "
          + ("PASS" if worst <= TOLERANCE else "FAIL"))
    if args.json:
        args.json.write_text(json.dumps({"reference": ref["values"], "facesketch": ours_all}, indent=1))
    return 0 if worst <= TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main())
