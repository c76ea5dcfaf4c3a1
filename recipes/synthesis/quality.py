"""Quality of a synthetic set (RoentGen's evaluation): FID with a pluggable feature extractor and
diversity as pairwise MS-SSIM over several samples per prompt; a markdown report with PNG grids.

Feature extractors (``--features``):
  ``inception``  torchvision Inception-v3 (2048-d pool features), only from a local weights file
                 (``--features-weights`` or ``<torch hub dir>/checkpoints/inception_v3_google-0cc3c7bd.pth``).
                 These are torchvision's weights, not the TF-ported ones of pytorch-fid / clean-fid, so
                 numbers are comparable within this tool only.
  ``xrv``        torchxrayvision DenseNet-121 ``densenet121-res224-all`` (1024-d), RoentGen's "FID-XRV";
                 only if its weights file is present locally. The architecture is built here (torchvision's
                 DenseNet-121 with a 1-channel stem; same keys), torchxrayvision is never imported. Its
                 release file is a pickled model: convert it to a state dict or pass ``trust_pickle``.
  ``clip``       a local Hugging Face CLIP folder (``--features-weights DIR``): the projected image
                 embedding (clean-fid's CLIP features), CLIP's input statistics; RoentGen's CLIP FID.
  anything else  an encoder spec of the harness (``models.loading.load_encoder``): a checkpoint path,
                 ``random:resnet50``, ``imagenet:resnet50``, ``module:function``; its global feature.

Every extractor's weights load strictly (a file missing a tensor, holding an extra one or one of
another shape is refused, naming them) and with ``weights_only=True`` unless ``trust_pickle``.
Real and synthetic images get the SAME preprocessing (:func:`load_square`): grey, centre crop
to the short side (torchxrayvision's ``XRayCenterCrop``), then resize; real MIMIC-CXR images are
not square and squashing them while the square synthetic ones are not squashed biases the FID.

FID = |mu_s - mu_r|^2 + Tr(S_s + S_r - 2 (S_s S_r)^(1/2)) (scipy ``sqrtm``). MS-SSIM follows Wang et
al. (2003): Gaussian window 11, sigma 1.5, K1 0.01, K2 0.03, five scales with weights
(0.0448, 0.2856, 0.3001, 0.2363, 0.1333), valid filtering, 2x2 average pooling between scales;
images too small for five scales use as many scales as fit (weights renormalised; recorded).
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np

from benchmark.errors import BenchmarkError, ConfigError

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
INCEPTION_FILE = "inception_v3_google-0cc3c7bd.pth"
XRV_WEIGHTS = "densenet121-res224-all"
XRV_FILE = "nih-pc-chex-mimic_ch-google-openi-kaggle-densenet121-d121-tw-lr001-rot45-tr15-sc15-seed0-best.pt"


# ----------------------------------------------------------------------------------- FID
def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise ConfigError(f"FID needs at least 2 feature vectors, got shape {features.shape}")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2)."""
    from scipy import linalg

    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    sigma1, sigma2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    diff = mu1 - mu2
    with warnings.catch_warnings():  # singular covariances (few samples) are handled below
        warnings.simplefilter("ignore")
        covmean = linalg.sqrtm(sigma1 @ sigma2)
        if not np.isfinite(covmean).all():  # regularise, as pytorch-fid does
            offset = np.eye(sigma1.shape[0]) * eps
            covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        covmean = covmean.real
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def fid(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """FID of two feature sets (sample means and covariances). With fewer vectors than
    dimensions the covariances are singular and ``sqrtm`` is slow and inexact there, so the
    trace term is computed exactly from the centred features instead: with S_a = A^T A and
    S_b = B^T B (A, B the centred features over sqrt(n - 1)), Tr (S_a S_b)^(1/2) is the sum of
    the singular values of A B^T, an n_a x n_b matrix."""
    a, b = np.asarray(features_a, dtype=np.float64), np.asarray(features_b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ConfigError(f"FID needs two (n, d) feature arrays of one width, got {a.shape} and {b.shape}")
    if max(len(a), len(b)) >= a.shape[1]:
        return frechet_distance(*gaussian_stats(a), *gaussian_stats(b))
    gaussian_stats(a), gaussian_stats(b)  # validates: at least 2 vectors each
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    ca, cb = (a - mu_a) / math.sqrt(len(a) - 1), (b - mu_b) / math.sqrt(len(b) - 1)
    cross = np.linalg.svd(ca @ cb.T, compute_uv=False).sum()
    diff = mu_a - mu_b
    return float(diff @ diff + (ca * ca).sum() + (cb * cb).sum() - 2 * cross)


# ----------------------------------------------------------------------------------- MS-SSIM
def _gaussian_window(size: int = 11, sigma: float = 1.5):
    import torch

    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def _filter(x, g):
    import torch.nn.functional as F

    c = x.shape[1]
    x = F.conv2d(x, g.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, g.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def ms_ssim(
    a,
    b,
    *,
    data_range: float = 255.0,
    window: int = 11,
    sigma: float = 1.5,
    weights=MS_SSIM_WEIGHTS,
    k1: float = 0.01,
    k2: float = 0.03,
):
    """MS-SSIM of two images or batches: arrays (H, W) or tensors (B, 1, H, W). Returns a float
    for single images, else a (B,) tensor. ``scales`` used: as many of the five as the image
    size allows (the coarsest needs a side >= ``window``)."""
    import torch
    import torch.nn.functional as F

    single = not torch.is_tensor(a) and np.ndim(a) == 2
    a = (a if torch.is_tensor(a) else torch.from_numpy(np.array(a, dtype=np.float64))).to(torch.float64)
    b = (b if torch.is_tensor(b) else torch.from_numpy(np.array(b, dtype=np.float64))).to(torch.float64)
    while a.dim() < 4:
        a, b = a.unsqueeze(0), b.unsqueeze(0)
    if a.shape != b.shape:
        raise ConfigError(f"MS-SSIM needs images of the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    scales = ms_ssim_scales(min(a.shape[-2:]), window, len(weights))
    w = torch.tensor(weights[:scales], dtype=torch.float64)
    w = w / w.sum()
    g = _gaussian_window(window, sigma)
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    values = []
    for s in range(scales):
        mu_a, mu_b = _filter(a, g), _filter(b, g)
        var_a = _filter(a * a, g) - mu_a**2
        var_b = _filter(b * b, g) - mu_b**2
        cov = _filter(a * b, g) - mu_a * mu_b
        cs = (2 * cov + c2) / (var_a + var_b + c2)
        if s == scales - 1:
            ssim = (2 * mu_a * mu_b + c1) / (mu_a**2 + mu_b**2 + c1) * cs
            values.append(torch.relu(ssim.flatten(1).mean(1)))
        else:
            values.append(torch.relu(cs.flatten(1).mean(1)))
            a, b = F.avg_pool2d(a, 2), F.avg_pool2d(b, 2)
    stacked = torch.stack(values, dim=1)  # (B, scales)
    result = torch.prod(stacked ** w.view(1, -1), dim=1)
    return float(result[0]) if single else result


def ms_ssim_scales(side: int, window: int = 11, wanted: int = 5) -> int:
    scales = 0
    while scales < wanted and side >= window:
        scales += 1
        side //= 2
    if scales == 0:
        raise ConfigError(f"MS-SSIM needs images of at least {window}x{window} pixels")
    return scales


def pairwise_ms_ssim(images: list[np.ndarray]) -> list[float]:
    """MS-SSIM of every unordered pair of (H, W) uint8 images."""
    out = []
    for i in range(len(images)):
        for j in range(i + 1, len(images)):
            out.append(ms_ssim(images[i], images[j]))
    return out


# ----------------------------------------------------------------------------------- features
def load_grey(path: str | Path, size: int | None = None) -> np.ndarray:
    """Grey uint8 image, resized to ``size`` x ``size`` (aspect NOT kept): for display grids only."""
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("L")
        if size is not None and im.size != (size, size):
            im = im.resize((size, size), Image.BILINEAR)
        return np.asarray(im)


def square_crop_box(width: int, height: int) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the centred square of side min(width, height), placed as
    torchxrayvision's ``XRayCenterCrop`` places it (start = half the side minus half the crop)."""
    side = min(width, height)
    left, top = width // 2 - side // 2, height // 2 - side // 2
    return left, top, left + side, top + side


def load_square(path: str | Path, size: int) -> np.ndarray:
    """The FID input of one image, the SAME for real and synthetic images: grey, centre-cropped
    to a square of the short side (no squashing of non-square images), then resized to
    ``size`` x ``size`` (PIL bilinear, which low-pass filters when it shrinks)."""
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("L")
        if im.size[0] != im.size[1]:
            im = im.crop(square_crop_box(*im.size))
        if im.size != (size, size):
            im = im.resize((size, size), Image.BILINEAR)
        return np.asarray(im)


PREPROCESSING = (
    "grey; centre crop to a square of the short side; bilinear resize to the input size; identical for both sets"
)


class Features:
    """name, size (square input side) and ``__call__(grey01: (B,1,S,S) tensor) -> (B, D) array``."""

    def __init__(self, name: str, size: int, fn, describe: dict):
        self.name, self.size, self.fn, self.describe = name, size, fn, {**describe, "preprocessing": PREPROCESSING}

    def __call__(self, grey01) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return self.fn(grey01).float().cpu().numpy()


def read_weights(path: Path, what: str, trust_pickle: bool = False) -> dict:
    """A state dict from ``path``, read with ``weights_only=True``. A file holding a pickled
    model (torchxrayvision's release files do) is refused unless ``trust_pickle``; then it is
    unpickled and its ``state_dict()`` taken."""
    import pickle

    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if not trust_pickle:
            raise ConfigError(
                f"{what}: {path} holds pickled Python objects (e.g. a whole saved model), "
                "which are not read by default "
                f"({str(error).splitlines()[0][:160]}). Convert it once to a state dict "
                "(torch.save(torch.load(FILE, weights_only=False).state_dict(), OUT)) or pass --features-trust-pickle "
                "for a file you trust."
            ) from None
        state = torch.load(path, map_location="cpu", weights_only=False)
    from models.state_loading import find_state_dict  # the harness's rule for where trainers nest weights

    state = state.state_dict() if hasattr(state, "state_dict") else state
    found = find_state_dict(state)
    if found is None:
        raise ConfigError(f"{what}: {path} holds a {type(state).__name__} without a state dict of tensors")
    return found[0]


def load_strict(model, state: dict, what: str, path: Path) -> None:
    """``model.load_state_dict(state)`` requiring every tensor to match: a wrong file is refused
    with its missing, unexpected and mis-shaped keys named."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    if missing or unexpected or shapes:

        def first(keys):
            return ", ".join(keys[:4]) + (" ..." if len(keys) > 4 else "")

        raise ConfigError(
            f"{what}: {path} does not fit the model: {len(missing)} missing ({first(missing)}), "
            f"{len(unexpected)} unexpected "
            f"({first(unexpected)}), {len(shapes)} of another shape ({first(shapes)})"
        )
    model.load_state_dict(state, strict=True)


def xrv_densenet121():
    """torchxrayvision's DenseNet-121 (``densenet121-res224-all``) built without importing
    torchxrayvision: torchvision's DenseNet-121 with a 1-channel stem and 18 outputs (its
    state-dict keys are the same)."""
    import torch
    import torchvision

    model = torchvision.models.densenet121(weights=None, num_classes=18)
    model.features.conv0 = torch.nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    return model


CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)  # OpenAI CLIP's input statistics (used when the folder names none)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def _clip_features(folder: Path, dev, image_size: int | None):
    import torch

    if not (folder / "config.json").is_file():
        raise ConfigError(
            f"--features clip: {folder} is not a local Hugging Face CLIP folder (no config.json); "
            "pass it with --features-weights DIR; nothing is downloaded at run time."
        )
    from transformers import CLIPModel

    model, info = CLIPModel.from_pretrained(folder, local_files_only=True, output_loading_info=True)
    bad = {
        k: sorted(map(str, v))
        for k, v in info.items()
        if k in ("missing_keys", "unexpected_keys", "mismatched_keys") and v
    }
    if bad:
        raise ConfigError(
            f"--features clip: {folder} does not fit its CLIP config: "
            + "; ".join(f"{k}: {', '.join(map(str, v[:4]))}" for k, v in bad.items())
        )
    model = model.eval().to(dev)
    size = int(model.config.vision_config.image_size)
    if image_size and image_size != size:
        raise ConfigError(f"--image-size {image_size}: this CLIP model takes {size} x {size} inputs")
    mean, std = CLIP_MEAN, CLIP_STD
    pre = folder / "preprocessor_config.json"
    if pre.is_file():
        cfg = json.loads(pre.read_text())
        mean, std = tuple(cfg.get("image_mean", mean)), tuple(cfg.get("image_std", std))
    m = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1).to(dev)
    sd = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1).to(dev)

    def run(g):  # grey -> RGB, CLIP statistics; the projected image embedding (clean-fid's CLIP features)
        out = model.get_image_features(pixel_values=(g.to(dev).expand(-1, 3, -1, -1) - m) / sd)
        return out if torch.is_tensor(out) else out.pooler_output

    return Features(
        "clip",
        size,
        run,
        {
            "features": "clip",
            "weights": str(folder),
            "dim": int(model.config.projection_dim),
            "mean": list(mean),
            "std": list(std),
        },
    )


def make_features(
    spec: str,
    *,
    weights: str | None = None,
    image_size: int | None = None,
    device: str = "cpu",
    trust_pickle: bool = False,
) -> Features:
    import torch

    dev = torch.device(device)
    if spec == "inception":
        import torchvision

        path = Path(weights) if weights else Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE
        if not path.is_file():
            raise ConfigError(
                f"--features inception: weights not found at {path}. Put torchvision's {INCEPTION_FILE} there "
                "(or pass --features-weights FILE); nothing is downloaded at run time."
            )
        model = torchvision.models.inception_v3(
            weights=None, aux_logits=True, init_weights=False, transform_input=False
        )
        load_strict(model, read_weights(path, "--features inception", trust_pickle), "--features inception", path)
        model.fc = torch.nn.Identity()
        model = model.eval().to(dev)
        # Google's Inception weights expect [-1, 1] inputs (what transform_input=True produces)
        return Features(
            "inception",
            image_size or 299,
            lambda g: model((g.to(dev).expand(-1, 3, -1, -1) - 0.5) / 0.5),
            {"features": "inception", "weights": str(path), "dim": 2048},
        )
    if spec == "xrv":
        path = Path(weights) if weights else Path.home() / ".torchxrayvision" / "models_data" / XRV_FILE
        if not path.is_file():
            raise ConfigError(
                f"--features xrv: torchxrayvision weights {XRV_WEIGHTS} not found at {path} "
                "(or pass --features-weights FILE); "
                "nothing is downloaded at run time."
            )
        import torch.nn.functional as F

        model = xrv_densenet121()
        state = dict(read_weights(path, "--features xrv", trust_pickle))
        state.pop(
            "op_threshs", None
        )  # torchxrayvision's operating-point buffer (classifier outputs only; not a weight)
        load_strict(model, state, "--features xrv", path)
        model = model.eval().to(dev)

        def run(g):  # xrv inputs: 1 channel, [-1024, 1024], 224x224; pooled DenseNet features (xrv's features2)
            x = model.features(g.to(dev) * 2048 - 1024)
            return F.adaptive_avg_pool2d(F.relu(x), 1).flatten(1)

        return Features("xrv", image_size or 224, run, {"features": "xrv", "weights": str(path), "dim": 1024})
    if spec == "clip":
        if not weights:
            raise ConfigError(
                "--features clip needs --features-weights DIR: a local Hugging Face CLIP folder (e.g. a snapshot "
                "of openai/clip-vit-base-patch32); nothing is downloaded at run time."
            )
        return _clip_features(Path(weights), dev, image_size)
    from models.loading import load_encoder

    loaded = load_encoder(spec)  # strict: the harness refuses a checkpoint that does not provide every backbone tensor
    encoder = loaded.encoder.eval().to(dev)
    size = encoder.contract.input_size or image_size or 224
    return Features(
        spec,
        size,
        lambda g: encoder.forward_global(encoder.prepare(g.to(dev))),
        {"features": spec, "encoder": loaded.spec, "sha256": loaded.sha256, "dim": encoder.feature_dim},
    )


def extract(features: Features, paths: list[str], batch_size: int = 32) -> np.ndarray:
    import torch

    out = []
    for b in range(0, len(paths), batch_size):
        grey = np.stack([load_square(p, features.size) for p in paths[b : b + batch_size]])
        out.append(features(torch.from_numpy(grey).float().div(255).unsqueeze(1)))
    return np.concatenate(out)


# ----------------------------------------------------------------------------------- grids
def sample_grid(
    path: Path, rows: list[tuple[str, list[np.ndarray]]], column_titles: list[str] | None = None, cell: int = 160
) -> Path:
    """A PNG grid (PIL): one row of images per (caption, images), the caption above the row."""
    from PIL import Image, ImageDraw

    ncols, band, gap = max(len(images) for _, images in rows), 14, 4
    head = band if column_titles else 0
    width = ncols * (cell + gap) + gap
    canvas = Image.new("L", (width, head + len(rows) * (band + cell + gap) + gap), 255)
    draw = ImageDraw.Draw(canvas)
    for c, title in enumerate(column_titles or []):
        draw.text((gap + c * (cell + gap) + 2, 1), title, fill=0)
    chars = max(10, width // 6)
    for r, (caption, images) in enumerate(rows):
        y = head + r * (band + cell + gap) + gap
        draw.text((gap, y), caption if len(caption) <= chars else caption[: chars - 3] + "...", fill=0)
        for c, image in enumerate(images):
            tile = Image.fromarray(np.asarray(image, dtype=np.uint8), "L").resize(
                (cell, cell), Image.NEAREST if min(np.shape(image)) < cell else Image.BILINEAR
            )
            canvas.paste(tile, (gap + c * (cell + gap), y + band))
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path, format="PNG")
    return path


# ----------------------------------------------------------------------------------- report
def quality_report(
    synthetic: str | Path,
    *,
    real: str | Path | None = None,
    features: str = "inception",
    features_weights: str | None = None,
    features_trust_pickle: bool = False,
    image_size: int | None = None,
    max_images: int = 10_000,
    model: str | Path | None = None,
    diversity_prompts: int = 20,
    samples_per_prompt: int = 4,
    report_dir: str | Path | None = None,
    device: str = "cpu",
    batch_size: int = 32,
    grid_rows: int = 6,
    log=print,
) -> dict:
    """FID (synthetic vs the real images of the same dicom ids) and MS-SSIM diversity; writes
    ``quality.md``, ``quality.json``, ``samples.png`` (real | synthetic) and ``diversity.png``."""
    from recipes.mimic import load_pairs

    from .generate import SUMMARY, image_checks, read_manifest

    synthetic = Path(synthetic)
    manifest = read_manifest(synthetic)
    if manifest.empty:
        raise BenchmarkError(f"{synthetic}: the synthesis manifest is empty")
    summary = json.loads((synthetic / SUMMARY).read_text()) if (synthetic / SUMMARY).is_file() else {}
    real = Path(real or summary.get("data_root") or "")
    if not str(real):
        raise ConfigError("--real: the real data root is needed (it is not recorded in SYNTHESIS.json)")
    report_dir = Path(report_dir or synthetic / "quality")
    real_pairs = load_pairs(real, min_tokens=0).set_index("dicom_id")
    rows = manifest[manifest["dicom_id"].isin(real_pairs.index)].head(max_images)
    if len(rows) < 2:
        raise BenchmarkError("fewer than 2 synthetic images have a real counterpart; FID needs more")
    synth_paths = [str(synthetic / p) for p in rows["path"]]
    real_paths = [real_pairs.loc[d, "image_path"] for d in rows["dicom_id"]]

    extractor = make_features(
        features, weights=features_weights, image_size=image_size, device=device, trust_pickle=features_trust_pickle
    )
    f_syn, f_real = extract(extractor, synth_paths, batch_size), extract(extractor, real_paths, batch_size)
    value = fid(f_syn, f_real)
    log(f"[quality] FID ({extractor.name}, {len(rows)} vs {len(rows)} images, {f_syn.shape[1]}-d): {value:.4f}")
    result: dict = {
        "synthetic": str(synthetic),
        "real": str(real),
        "images": len(rows),
        "fid": {
            "value": value,
            **extractor.describe,
            "input_size": extractor.size,
            "feature_dim": int(f_syn.shape[1]),
            "reliable": len(rows) > f_syn.shape[1],
        },
        "duplicates": int(len(manifest) - manifest["sha256"].nunique()),
        "image_checks": image_checks(manifest),
        "generation": {
            k: summary.get(k)
            for k in ("generator", "preset", "scheduler", "steps", "guidance", "seed", "seed_mode", "height", "width")
        },
    }

    grid = [
        (
            r.prompt,
            [
                load_square(real_pairs.loc[r.dicom_id, "image_path"], 256 if r.height > 256 else r.height),
                load_grey(synthetic / r.path),
            ],
        )
        for r in rows.head(grid_rows).itertuples()
    ]
    sample_grid(report_dir / "samples.png", grid, ["real", "synthetic"])
    result["samples_png"] = "samples.png"

    # diversity of the REAL images (baseline): groups of k real images
    k = max(2, int(samples_per_prompt))
    real_imgs = [
        load_square(p, int(rows["height"].iloc[0]))
        for p in real_paths[: k * max(1, min(diversity_prompts, len(real_paths) // k))]
    ]
    real_groups = [real_imgs[i : i + k] for i in range(0, len(real_imgs) - k + 1, k)]
    real_scores = [s for g in real_groups for s in pairwise_ms_ssim(g)]
    side = int(min(rows["height"].iloc[0], rows["width"].iloc[0]))
    result["ms_ssim"] = {
        "window": 11,
        "sigma": 1.5,
        "scales": ms_ssim_scales(side),
        "samples_per_prompt": k,
        "real_groups_mean": float(np.mean(real_scores)) if real_scores else None,
    }
    if model is not None:
        result["ms_ssim"].update(_diversity(model, manifest, summary, diversity_prompts, k, device, report_dir, log))
    else:
        result["ms_ssim"]["synthetic_mean"] = None
        result["ms_ssim"]["note"] = "pass --model (the generator) to sample several images per prompt"
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "quality.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    (report_dir / "quality.md").write_text(_markdown(result))
    log(f"[quality] report: {report_dir / 'quality.md'}")
    return result


def _diversity(model, manifest, summary, prompts_wanted, k, device, report_dir, log) -> dict:
    import torch

    from .generate import load_pipeline, resolve_device_dtype, synthesize

    dev, dtype_name, torch_dtype = resolve_device_dtype(device, "auto")
    scheduler = {
        "DDIMScheduler": "ddim",
        "PNDMScheduler": "pndm",
        "DPMSolverMultistepScheduler": "dpm",
        "EulerDiscreteScheduler": "euler",
        "DDPMScheduler": "ddpm",
    }.get(str(manifest["scheduler"].iloc[0]), "default")
    pipe = load_pipeline(Path(model), torch_dtype, dev, scheduler)
    first = manifest.drop_duplicates("prompt").head(prompts_wanted)
    scores, grid = [], []
    for row in first.itertuples():
        seeds = [int(row.seed) + j for j in range(k)]  # j = 0 is the dataset's own image
        images = synthesize(
            pipe,
            [row.prompt] * k,
            seeds,
            height=int(row.height),
            width=int(row.width),
            steps=int(row.steps),
            guidance=float(row.guidance),
        )
        pair_scores = pairwise_ms_ssim(images)
        scores.append(float(np.mean(pair_scores)))
        grid.append((f"[MS-SSIM {scores[-1]:.3f}] {row.prompt}", images))
    sample_grid(report_dir / "diversity.png", grid[:8], [f"seed +{j}" for j in range(k)])
    del pipe
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    log(f"[quality] diversity: mean pairwise MS-SSIM over {len(scores)} prompts x {k} samples = {np.mean(scores):.4f}")
    return {
        "synthetic_mean": float(np.mean(scores)),
        "synthetic_std": float(np.std(scores)),
        "prompts": len(scores),
        "per_prompt": scores,
        "diversity_png": "diversity.png",
        "dtype": dtype_name,
    }


def _fmt(v) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4f}"


def _checks_line(c: dict) -> str:
    if not c:
        return "- image checks: not recorded"
    regen, bad = c["regenerated"], c["bad_after_retry"]
    return (
        f"- image checks: regenerated once with seed + 1: {regen['nonfinite']} non-finite (NaN), "
        f"{regen['constant']} constant; "
        f"still bad after the retry: {bad['nonfinite']} non-finite, {bad['constant']} constant; "
        f"{c['duplicate_prompt_images']} images repeat another image's prompt "
        f"({c['duplicate_prompt_images_same_study']} within one study)"
    )


def _markdown(r: dict) -> str:
    g, m, f = r["generation"], r["ms_ssim"], r["fid"]
    lines = [
        "# Synthetic set quality",
        "",
        f"- synthetic: `{r['synthetic']}`; real: `{r['real']}`",
        f"- generator: {g.get('generator')} (preset {g.get('preset')}, {g.get('scheduler')}, {g.get('steps')} steps, "
        f"guidance {g.get('guidance')}, {g.get('height')}x{g.get('width')}, seed {g.get('seed')} {g.get('seed_mode')})",
        f"- images compared: {r['images']}; byte-identical synthetic duplicates: {r['duplicates']}",
        _checks_line(r.get("image_checks") or {}),
        "",
        "| metric | value | notes |",
        "| --- | --- | --- |",
        f"| FID ({f['features']}) | {_fmt(f['value'])} | {f['feature_dim']}-d features at {f['input_size']} px"
        + ("" if f["reliable"] else "; fewer images than feature dimensions: biased, smoke only")
        + " |",
        f"| MS-SSIM synthetic (same prompt, {m['samples_per_prompt']} seeds) | {_fmt(m.get('synthetic_mean'))} | "
        "lower = more diverse; "
        f"{m.get('prompts', 0)} prompts; window 11, sigma 1.5, {m['scales']} scales |",
        f"| MS-SSIM real (groups of {m['samples_per_prompt']} images) | {_fmt(m.get('real_groups_mean'))} | baseline |",
        "",
        "![real vs synthetic](samples.png)",
        "",
    ]
    if m.get("diversity_png"):
        lines += ["![samples per prompt](diversity.png)", ""]
    if m.get("note"):
        lines += [f"Diversity: {m['note']}.", ""]
    return "\n".join(lines)


def add_parser(sub) -> None:
    p = sub.add_parser(
        "quality",
        help="FID and MS-SSIM diversity report of a synthetic set",
        description="FID between synthetic and real images (pluggable features) and MS-SSIM diversity; "
        "writes quality.md, quality.json and PNG grids.",
    )
    p.add_argument("--synthetic", required=True, help="the synthetic data root written by `generate` (--output)")
    p.add_argument("--real", help="the real data root (default: the one recorded in SYNTHESIS.json)")
    p.add_argument(
        "--features",
        default="inception",
        help="inception (local torchvision weights), xrv (local torchxrayvision DenseNet weights), clip (a local "
        "Hugging Face CLIP folder given as --features-weights), or a harness encoder spec (checkpoint path, "
        "random:ARCH, imagenet:ARCH, module:function)",
    )
    p.add_argument(
        "--features-weights",
        help="weights file for --features inception/xrv (default: their usual cache paths); "
        "the CLIP folder for --features clip",
    )
    p.add_argument(
        "--features-trust-pickle",
        action="store_true",
        help="allow a weights file that holds pickled objects (e.g. "
        "torchxrayvision's release file, a whole saved model); default: state dicts only (weights_only=True)",
    )
    p.add_argument(
        "--image-size", type=int, help="feature input size (default: 299 inception, 224 xrv, the encoder's own or 224)"
    )
    p.add_argument(
        "--max-images", type=int, default=10_000, help="at most this many synthetic/real pairs for FID (default 10000)"
    )
    p.add_argument(
        "--model", help="the generator's local pipeline directory, to sample several images per prompt for diversity"
    )
    p.add_argument("--diversity-prompts", type=int, default=20, help="prompts for the diversity estimate (default 20)")
    p.add_argument("--samples-per-prompt", type=int, default=4, help="samples per prompt (RoentGen: 4)")
    p.add_argument("--report-dir", help="where to write the report (default SYNTHETIC/quality)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    p.add_argument("--batch-size", type=int, default=32, help="feature-extraction batch size")


def run_from_args(args) -> dict:
    return quality_report(
        args.synthetic,
        real=args.real,
        features=args.features,
        features_weights=args.features_weights,
        features_trust_pickle=args.features_trust_pickle,
        image_size=args.image_size,
        max_images=args.max_images,
        model=args.model,
        diversity_prompts=args.diversity_prompts,
        samples_per_prompt=args.samples_per_prompt,
        report_dir=args.report_dir,
        device=args.device,
        batch_size=args.batch_size,
    )
