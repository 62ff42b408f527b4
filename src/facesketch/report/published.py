"""Published results the report shows beside ours: only numbers read in a paper or its authors' own
code/README, each with its source."""

from __future__ import annotations

# Published results: only numbers read in a paper or its authors' own code/README,
# each with its source. Nothing else is known: every other cell stays "-".
PUBLISHED_LABEL = "Published results (each with its test set and protocol; not run-for-run comparable)"
PUBLISHED_COLUMNS = (("fsim", "FSIM"), ("fsimc", "FSIMc"), ("ssim", "SSIM"), ("psnr", "PSNR"),
                     ("lpips", "LPIPS"), ("dists", "DISTS"))
_SCG = ("Chen, Liu, Tan & Wong, Semi-supervised Cycle-GAN for face photo-sketch translation in the wild, "
        "CVIU 2023; numbers from the authors' README, github.com/chaofengc/Face-Sketch-SCG")
_SCG_PROTOCOL = ("outputs saved at the test image's size (evaluate.py); FSIM by pyiqa 'fsim' on RGB "
                 "(chromatic, i.e. FSIMc; for grey sketches equal to FSIM), LPIPS-VGG, DISTS")
PUBLISHED = (
    {"task": "f2s", "model": "best conv autoencoder", "year": "", "test_set": "CUHK student, own random 80/20 split",
     "protocol": "the study's (not stated)", "source": "the study, Table III", "psnr": 19.4, "ssim": 0.67},
    {"task": "s2f", "model": "best conv + BatchNorm autoencoder", "year": "",
     "test_set": "CUHK student, own random 80/20 split", "protocol": "the study's (not stated)",
     "source": "the study, Table III", "psnr": 13.5, "ssim": 0.64},
    {"task": "both", "model": "VAE", "year": "", "test_set": "", "protocol": "", "source": "the study",
     "note": "failed to train (no figures)"},
    {"task": "f2s", "model": "SCG, paper", "year": 2023, "test_set": "CUFS test set", "protocol": _SCG_PROTOCOL,
     "source": _SCG + " ('Paper Results (AtoB)')", "fsim": 0.7343, "lpips": 0.3232, "dists": 0.1967},
    {"task": "f2s", "model": "SCG, released model", "year": 2023, "test_set": "CUFS test set",
     "protocol": _SCG_PROTOCOL, "source": _SCG + " ('Released', AtoB)", "fsim": 0.7349, "lpips": 0.3140,
     "dists": 0.1875},
    {"task": "s2f", "model": "SCG, paper", "year": 2023, "test_set": "CUFS test set", "protocol": _SCG_PROTOCOL,
     "source": _SCG + " ('Paper Results (BtoA)')", "fsimc": 0.7652, "lpips": 0.3374, "dists": 0.1710},
    {"task": "s2f", "model": "SCG, released model", "year": 2023, "test_set": "CUFS test set",
     "protocol": _SCG_PROTOCOL, "source": _SCG + " ('Released', BtoA)", "fsimc": 0.7789, "lpips": 0.2874,
     "dists": 0.1633},
)
NOT_COMPUTED_NOTE = ("FID is not computed here (it needs Inception weights). LPIPS and DISTS are computed as the "
                     "published rows compute them (lpips v0.1, DISTS_pytorch) when their ImageNet weights are on "
                     "disk (FACESKETCH_WEIGHTS_DIR; docs/metrics.md); the Perceptual table above shows them or "
                     "says why not. Published rows are on other test sets: not run-for-run comparable.")


def published_rows() -> list[dict[str, str]]:
    """The published figures as display strings, '-' wherever a source gives none."""
    return [{"task": p["task"], "model": p["model"], "year": str(p.get("year", "")),
             "test_set": p.get("test_set", ""), "protocol": p.get("protocol", ""), "source": p.get("source", ""),
             "note": p.get("note", ""), **{k: "-" if k not in p else str(p[k]) for k, _ in PUBLISHED_COLUMNS}}
            for p in PUBLISHED]


