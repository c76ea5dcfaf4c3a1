"""FID feature extractors of the synthesis quality report (``recipes.synthesis.quality``), each
on a constructed case: identical sets give FID ~0; a real set of NON-square images whose centre
squares are the synthetic images gives ~0 too (same preprocessing: centre crop, then resize;
squashing the real images instead gives a clearly positive FID); a brightness-shifted set
gives the value computed from the extractor's own features of the hand-made arrays, and for a
linear extractor the closed form. Every extractor refuses a weights file that does not fit it.
Weights are tiny or random and written locally; nothing is downloaded."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from benchmark.errors import ConfigError
from recipes.synthesis.quality import extract, fid, load_grey, load_square, make_features, square_crop_box

N, SHIFT = 8, 40


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


class QuadrantMeans(torch.nn.Module):
    """A linear extractor: the mean of each image quadrant (4-d)."""

    def forward(self, x):
        return torch.nn.functional.adaptive_avg_pool2d(x[:, :1], 2).flatten(1)


def quadrant_means():
    return QuadrantMeans()


def write_sets(folder, side: int, margin: int) -> tuple[list[np.ndarray], dict[str, list[str]]]:
    """``N`` square grey images (values <= 215, so +SHIFT never clips) saved as the synthetic set
    and shifted; the real set holds each one inside a wider, non-square image with random
    margins left and right (what a centre crop removes)."""
    rng = np.random.default_rng(0)
    centres = [rng.integers(0, 216, (side, side)).astype(np.uint8) for _ in range(N)]
    paths: dict[str, list[str]] = {"real": [], "synthetic": [], "shifted": []}
    for k, centre in enumerate(centres):
        wide = rng.integers(0, 256, (side, side + 2 * margin)).astype(np.uint8)
        wide[:, margin : margin + side] = centre
        for kind, image in (("real", wide), ("synthetic", centre), ("shifted", centre + SHIFT)):
            path = folder / f"{kind}-{k}.png"
            Image.fromarray(image, "L").save(path)
            paths[kind].append(str(path))
    return centres, paths


def check_extractor(features, folder, side: int, margin: int = 6) -> dict[str, float]:
    centres, paths = write_sets(folder, side, margin)
    real, synthetic, shifted = (extract(features, paths[k], batch_size=N) for k in ("real", "synthetic", "shifted"))
    assert np.array_equal(real, synthetic)  # the centre crop of each real image IS its synthetic image
    # the extractor's own features of the hand-made arrays (resized exactly as load_square does)
    size = features.size

    def direct(arrays):
        grey = np.stack(
            [
                np.asarray(Image.fromarray(a).resize((size, size), Image.BILINEAR)) if a.shape != (size, size) else a
                for a in arrays
            ]
        )
        return features(torch.from_numpy(grey).float().div(255).unsqueeze(1))

    expected_shift = fid(direct(centres), direct([c + SHIFT for c in centres]))
    values = {
        "identical": fid(synthetic, synthetic),
        "real_vs_synthetic": fid(real, synthetic),
        "shifted": fid(real, shifted),
        "expected_shift": expected_shift,
    }
    # what squashing the real images (the former preprocessing) would have given
    squashed = np.stack([load_grey(p, size) for p in paths["real"]])
    values["squashed"] = fid(features(torch.from_numpy(squashed).float().div(255).unsqueeze(1)), synthetic)
    assert values["shifted"] == pytest.approx(expected_shift, rel=1e-6) and expected_shift > 0
    scale = values["shifted"]
    assert abs(values["identical"]) <= 1e-6 * scale and abs(values["real_vs_synthetic"]) <= 1e-6 * scale
    assert values["squashed"] > 0.01 * scale
    return values


def test_fid_with_fewer_vectors_than_dimensions_is_exact():
    """The low-rank path (n < d) equals the textbook formula on the same sample statistics."""
    from recipes.synthesis.quality import frechet_distance, gaussian_stats

    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(6, 10)), rng.normal(size=(7, 10)) * 1.5 + 0.3  # ranks 5 and 6: singular covariances
    assert fid(a, b) == pytest.approx(frechet_distance(*gaussian_stats(a), *gaussian_stats(b)), rel=1e-6)
    assert fid(a, a) == pytest.approx(0.0, abs=1e-9) and fid(a, a + 1.0) == pytest.approx(10.0, rel=1e-9)
    with pytest.raises(ConfigError, match="one width"):
        fid(a, b[:, :4])


def test_load_square_crops_the_centre_like_torchxrayvision(tmp_path):
    assert (
        square_crop_box(10, 4) == (3, 0, 7, 4)
        and square_crop_box(4, 9) == (0, 2, 4, 6)
        and square_crop_box(5, 5) == (0, 0, 5, 5)
    )
    image = np.arange(4 * 10, dtype=np.uint8).reshape(4, 10)
    Image.fromarray(image, "L").save(tmp_path / "wide.png")
    assert np.array_equal(load_square(tmp_path / "wide.png", 4), image[:, 3:7])


def test_linear_extractor_gives_the_closed_form(tmp_path):
    """Quadrant means of (grey - 0.5) / 0.5: a shift of SHIFT grey levels moves every feature by
    2 * SHIFT / 255 and leaves the covariance unchanged, so FID = 4 * (2 * SHIFT / 255)^2."""
    features = make_features("tests.test_fid_features:quadrant_means", image_size=16)
    assert features.size == 16 and "centre crop" in features.describe["preprocessing"]
    values = check_extractor(features, tmp_path, side=32)  # 32 -> 16: the resize runs, on both sets alike
    assert values["shifted"] == pytest.approx(4 * (2 * SHIFT / 255) ** 2, rel=1e-6)  # 0.3937
    assert abs(values["identical"]) < 1e-12 and abs(values["real_vs_synthetic"]) < 1e-12


def test_inception_features_and_strict_loading(tmp_path):
    import torchvision

    model = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False)
    torch.save(model.state_dict(), tmp_path / "inception.pth")
    features = make_features("inception", weights=str(tmp_path / "inception.pth"), image_size=80)
    check_extractor(features, tmp_path, side=80)
    state = model.state_dict()
    state.pop("fc.weight")
    torch.save(state, tmp_path / "missing.pth")
    with pytest.raises(ConfigError, match=r"1 missing \(fc.weight\)"):
        make_features("inception", weights=str(tmp_path / "missing.pth"))


def test_xrv_features_strict_and_weights_only_loading(tmp_path):
    from recipes.synthesis.quality import xrv_densenet121

    model = xrv_densenet121()
    state = model.state_dict()
    torch.save({**state, "op_threshs": torch.rand(18)}, tmp_path / "xrv.pt")  # the operating-point buffer is allowed
    features = make_features("xrv", weights=str(tmp_path / "xrv.pt"), image_size=64)
    assert features.describe["dim"] == 1024
    check_extractor(features, tmp_path, side=64)
    # a wrong file no longer passes silently: a 3-channel torchvision DenseNet-121 differs in conv0 and the classifier
    torch.save(torchvision_densenet_state(), tmp_path / "imagenet-densenet.pt")
    with pytest.raises(
        ConfigError,
        match=r"0 missing \(\), 0 unexpected \(\), 3 of another shape "
        r"\(classifier.bias, classifier.weight, features.conv0.weight",
    ):
        make_features("xrv", weights=str(tmp_path / "imagenet-densenet.pt"))
    # torchxrayvision's release files are whole pickled models: refused unless trusted
    torch.save(model, tmp_path / "pickled.pt")
    with pytest.raises(ConfigError, match="pickled Python objects"):
        make_features("xrv", weights=str(tmp_path / "pickled.pt"))
    trusted = make_features("xrv", weights=str(tmp_path / "pickled.pt"), image_size=64, trust_pickle=True)
    x = torch.rand(2, 1, 64, 64)
    assert np.array_equal(trusted(x), make_features("xrv", weights=str(tmp_path / "xrv.pt"), image_size=64)(x))


def torchvision_densenet_state() -> dict:
    import torchvision

    return torchvision.models.densenet121(weights=None).state_dict()


def tiny_clip(folder):
    from transformers import CLIPConfig, CLIPModel

    config = CLIPConfig(
        text_config={
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "vocab_size": 64,
            "max_position_embeddings": 16,
            "bos_token_id": 0,
            "eos_token_id": 1,
            "pad_token_id": 1,
        },
        vision_config={
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": 32,
            "patch_size": 8,
        },
        projection_dim=12,
    )
    torch.manual_seed(0)
    CLIPModel(config).save_pretrained(folder)
    return folder


def test_clip_features_from_a_local_folder(tmp_path):
    folder = tiny_clip(tmp_path / "clip")
    features = make_features("clip", weights=str(folder))
    assert features.size == 32 and features.describe["dim"] == 12
    check_extractor(features, tmp_path, side=48)  # 48 -> 32
    with pytest.raises(ConfigError, match="needs --features-weights DIR"):
        make_features("clip")
    with pytest.raises(ConfigError, match="takes 32 x 32 inputs"):
        make_features("clip", weights=str(folder), image_size=224)
    # a folder whose weights lack tensors its config needs is refused
    from safetensors.torch import load_file, save_file

    weights = folder / "model.safetensors"
    state = load_file(weights)
    save_file(
        {k: v for k, v in state.items() if not k.startswith("visual_projection")}, weights, metadata={"format": "pt"}
    )
    with pytest.raises(ConfigError, match="missing_keys: visual_projection.weight"):
        make_features("clip", weights=str(folder))
