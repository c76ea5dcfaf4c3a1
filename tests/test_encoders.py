"""Encoders and checkpoint adapters (models/): every format loads to the same outputs as
the model it was saved from; bad checkpoints are refused with actionable messages.

Tiny random models only (resnet_tiny, vit_tiny_test), CPU, no downloads.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import textwrap
import warnings

import pytest
import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, ResNet

from benchmark.errors import CheckpointError, ConfigError
from models import ARCHS, Encoder, InputContract, LoadedEncoder, build_arch, infer_arch, load_encoder
from models.formats import FORMATS, SOURCES
from models.formats.lightning_prefixed import KNOWN_PREFIXES

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


TEXT_AND_HEADS = {  # non-backbone tensors a MedVLP Lightning checkpoint also holds
    "text_encoder_q.model.embeddings.word_embeddings.weight": torch.randn(30, 8),
    "text_encoder_q.model.encoder.layer.0.attention.self.query.weight": torch.randn(8, 8),
    "img_encoder_q.global_embed.head.0.weight": torch.randn(16, 512),
    "img_encoder_q.local_embed.head.0.weight": torch.randn(16, 256, 1, 1),
    "prototype_layer.weight": torch.randn(10, 16),
}


# ---------------------------------------------------------------------------------------
# reference models, built without the code under test
# ---------------------------------------------------------------------------------------
def tv_tiny_resnet(seed: int = 1) -> ResNet:
    torch.manual_seed(seed)
    m = ResNet(BasicBlock, [1, 1, 1, 1], num_classes=7)
    # non-trivial BatchNorm statistics, so that they must be loaded too
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.2, 0.2)
            mod.running_var.uniform_(0.5, 1.5)
    return m.eval()


def tv_features(m: ResNet, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    stem = m.relu(m.bn1(m.conv1(x)))
    c1 = m.layer1(m.maxpool(stem))
    c2 = m.layer2(c1)
    c3 = m.layer3(c2)
    c4 = m.layer4(c3)
    return torch.flatten(m.avgpool(c4), 1), [stem, c1, c2, c3, c4]


def timm_tiny_vit(seed: int = 2, img_size: int = 32):
    from timm.models.vision_transformer import VisionTransformer

    torch.manual_seed(seed)
    return VisionTransformer(img_size=img_size, patch_size=8, embed_dim=48, depth=2, num_heads=3, num_classes=5).eval()


def grey(b=2, size=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 1, size, size, generator=g)


def check_resnet_matches(loaded: LoadedEncoder, ref: ResNet, size: int = 64) -> None:
    enc = loaded.encoder
    assert enc.arch == "resnet_tiny"
    x = enc.prepare(grey(size=size))
    with torch.no_grad():
        g_ref, p_ref = tv_features(ref, x)
        g = enc.forward_global(x)
        pyr = enc.forward_pyramid(x)
        assert torch.equal(enc(x), g)
    torch.testing.assert_close(g, g_ref, rtol=0, atol=0)
    assert g.shape == (2, enc.feature_dim) == (2, 512)
    assert len(pyr) == len(enc.pyramid_channels) == len(enc.pyramid_strides) == 5
    for t, t_ref, c, s in zip(pyr, p_ref, enc.pyramid_channels, enc.pyramid_strides):
        torch.testing.assert_close(t, t_ref, rtol=0, atol=0)
        assert t.shape == (2, c, size // s, size // s)


def check_vit_matches(loaded: LoadedEncoder, ref) -> None:
    enc = loaded.encoder
    assert enc.arch == "vit_tiny_test"
    assert enc.contract.input_size == 32
    x = enc.prepare(grey(size=32))
    with torch.no_grad():
        g_ref = ref.forward_head(ref.forward_features(x), pre_logits=True)
        g = enc.forward_global(x)
        pyr = enc.forward_pyramid(x)
    torch.testing.assert_close(g, g_ref, rtol=1e-5, atol=1e-6)
    assert g.shape == (2, 48) and enc.feature_dim == 48
    assert enc.pyramid_strides == (4, 8, 16, 32)
    assert [tuple(t.shape) for t in pyr] == [(2, 48, 32 // s, 32 // s) for s in (4, 8, 16, 32)]
    # the stride-8 level is the last pyramid block's token map at patch resolution (8)
    with torch.no_grad():
        tokens = ref.blocks(ref._pos_embed(ref.patch_embed(x)))
    want = tokens[:, 1:].transpose(1, 2).reshape(2, 48, 4, 4)
    torch.testing.assert_close(
        pyr[3],
        torch.nn.functional.interpolate(want, size=(1, 1), mode="bilinear", align_corners=False),
        rtol=1e-5,
        atol=1e-6,
    )


# ---------------------------------------------------------------------------------------
# registry and interface
# ---------------------------------------------------------------------------------------
def test_registries_list_all_formats_and_sources():
    assert {"torchvision_resnet", "lightning_prefixed", "timm_vit", "torchscript", "biovil", "kad", "medklip"} <= set(
        FORMATS
    )
    assert set(SOURCES) == {"random", "imagenet", "module", "hf"}
    assert {
        "resnet18",
        "resnet34",
        "resnet50",
        "resnet101",
        "resnet_tiny",
        "vit_base_patch16_224",
        "vit_small_patch16_224",
        "vit_tiny_test",
    } <= set(ARCHS)
    assert KNOWN_PREFIXES == {
        "img_encoder_q.model.": "mgca",
        "img_encoder.model.": "convirt",
        "gloria.img_encoder.model.": "gloria",
        "visual.model.": "benchx",
        "encoder.": "mflag",
        "backbone.": "g2d",
    }


def test_unknown_arch_lists_known_ones():
    with pytest.raises(ConfigError) as e:
        build_arch("resnet51")
    assert "resnet51" in str(e.value) and "resnet50" in str(e.value) and "vit_tiny_test" in str(e.value)


def test_prepare_default_contract_maps_grey_to_three_channels_in_minus1_1():
    enc = build_arch("resnet_tiny", seed=0)
    g = torch.tensor([0.0, 0.25, 0.5, 1.0]).view(1, 1, 2, 2).repeat(3, 1, 1, 1)
    x = enc.prepare(g)
    assert x.shape == (3, 3, 2, 2)
    expected = torch.tensor([-1.0, -0.5, 0.0, 1.0]).view(1, 1, 2, 2).expand(3, 3, 2, 2)
    torch.testing.assert_close(x, expected)
    assert x.min() >= -1 and x.max() <= 1
    assert enc.prepare(g[:, 0]).shape == (3, 3, 2, 2)  # (B,H,W) accepted
    with pytest.raises(ConfigError, match=r"\(B,1,H,W\)"):
        enc.prepare(torch.rand(2, 2, 4, 4))


def test_prepare_imagenet_and_single_channel_contracts():
    enc = build_arch("resnet_tiny", seed=0)
    enc.contract = InputContract.imagenet()
    x = enc.prepare(torch.full((1, 1, 2, 2), 0.485))
    assert x[0, 0].abs().max() < 1e-6 and x.shape[1] == 3
    torch.testing.assert_close(x[0, 2, 0, 0], torch.tensor((0.485 - 0.406) / 0.225))
    one = build_arch("resnet_tiny", seed=0, in_chans=1)
    assert one.contract.channels == 1 and one.prepare(torch.rand(2, 1, 8, 8)).shape == (2, 1, 8, 8)
    with pytest.raises(ConfigError, match="channels"):
        InputContract(mean=(0.5, 0.5), channels=3)


def test_describe_and_contract_to_dict():
    d = build_arch("resnet_tiny", seed=0).describe()
    assert d["arch"] == "resnet_tiny" and d["feature_dim"] == 512
    assert d["pyramid_channels"] == [64, 64, 128, 256, 512]
    assert d["pyramid_strides"] == [2, 4, 8, 16, 32]
    assert d["contract"] == {"mean": [0.5] * 3, "std": [0.5] * 3, "channels": 3, "input_size": None}
    assert InputContract.from_dict(d["contract"]) == InputContract()


def test_resnet50_feature_dim_and_pyramid_channels_without_allocating():
    with torch.device("meta"):
        enc = build_arch("resnet50")
    assert enc.feature_dim == 2048 and enc.pyramid_channels == (64, 256, 512, 1024, 2048)
    with torch.device("meta"):
        vit = build_arch("vit_base_patch16_224")
    assert vit.feature_dim == 768 and vit.contract.input_size == 224


def test_infer_arch_from_state_dict_layouts():
    import torchvision

    with torch.device("meta"):
        for name, ctor in [
            ("resnet18", torchvision.models.resnet18),
            ("resnet34", torchvision.models.resnet34),
            ("resnet50", torchvision.models.resnet50),
            ("resnet101", torchvision.models.resnet101),
        ]:
            assert infer_arch(ctor().state_dict()) == name
        assert infer_arch(ResNet(BasicBlock, [1, 1, 1, 1]).state_dict()) == "resnet_tiny"
    assert infer_arch(timm_tiny_vit().state_dict()) == "vit_tiny_test"
    with pytest.raises(CheckpointError, match="--arch"):
        infer_arch({"foo.weight": torch.zeros(1)})


# ---------------------------------------------------------------------------------------
# checkpoint formats: each loads to the outputs of the model it came from
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("wrap", ["plain", "state_dict", "model", "ddp"])
def test_torchvision_resnet_state_dict(tmp_path, wrap):
    ref = tv_tiny_resnet()
    sd = ref.state_dict()
    obj = {
        "plain": sd,
        "state_dict": {"state_dict": sd, "epoch": 3},
        "model": {"model": sd},
        "ddp": {"module." + k: v for k, v in sd.items()},
    }[wrap]
    path = tmp_path / "resnet.pth"
    torch.save(obj, path)
    loaded = load_encoder(str(path))
    assert loaded.format == "torchvision_resnet" and loaded.method_hint is None
    assert loaded.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    r = loaded.load_report
    assert r["missing"] == [] and r["unexpected"] == [] and r["n_loaded"] == r["n_expected"] > 0
    assert sorted(r["head_ignored"]) == ["fc.bias", "fc.weight"]
    assert r["arch_inferred"] is True
    check_resnet_matches(loaded, ref)


@pytest.mark.parametrize("prefix,method", list(KNOWN_PREFIXES.items()))
def test_lightning_checkpoint_for_each_method_prefix(tmp_path, prefix, method):
    ref = tv_tiny_resnet(seed=3)
    backbone = {k: v for k, v in ref.state_dict().items() if not k.startswith("fc.")}
    sd = {prefix + k: v for k, v in backbone.items()}
    sd.update(TEXT_AND_HEADS)
    ckpt = {
        "state_dict": sd,
        "epoch": 3,
        "global_step": 1200,
        "pytorch-lightning_version": "1.9.0",
        "hyper_parameters": {"lr": 1e-4, "img_encoder": "resnet_50"},
        "optimizer_states": [],
        "lr_schedulers": [],
    }
    path = tmp_path / f"{method}.ckpt"
    torch.save(ckpt, path)
    loaded = load_encoder(str(path))
    assert loaded.format == "lightning_prefixed"
    assert loaded.method_hint == method
    r = loaded.load_report
    assert r["prefix"] == prefix and r["lightning"] is True and r["epoch"] == 3
    assert r["n_ignored"] == len(TEXT_AND_HEADS) and r["missing"] == [] and r["unexpected"] == []
    check_resnet_matches(loaded, ref)


def test_prefixed_plain_state_dict_with_ddp_and_most_tensors_wins(tmp_path):
    ref = tv_tiny_resnet(seed=4)
    other = tv_tiny_resnet(seed=5)
    sd = {"module.img_encoder_q.model." + k: v for k, v in ref.state_dict().items() if not k.startswith("fc")}
    # a smaller ResNet-looking block under "encoder." (fewer tensors) must lose
    small = {k: v for k, v in other.state_dict().items() if k.startswith(("conv1", "bn1", "layer1"))}
    sd.update({"module.encoder." + k: v for k, v in small.items()})
    path = tmp_path / "plain_prefixed.pt"
    torch.save(sd, path)
    loaded = load_encoder(str(path))
    assert loaded.format == "lightning_prefixed" and loaded.method_hint == "mgca"
    assert loaded.load_report["lightning"] is False
    assert loaded.load_report["other_prefixes"] == {"encoder.": len(small)}
    check_resnet_matches(loaded, ref)


def test_unknown_single_prefix_is_discovered(tmp_path):
    ref = tv_tiny_resnet(seed=6)
    sd = {"net.image_model.backbone_x." + k: v for k, v in ref.state_dict().items()}
    sd["net.text_model.w"] = torch.zeros(3)
    torch.save({"state_dict": sd, "epoch": 1}, tmp_path / "x.ckpt")
    loaded = load_encoder(str(tmp_path / "x.ckpt"))
    assert loaded.load_report["prefix"] == "net.image_model.backbone_x."
    assert loaded.load_report["prefix_source"] == "discovered" and loaded.method_hint is None
    check_resnet_matches(loaded, ref)
    # a known prefix nested one level deeper still names the method
    torch.save({"model.img_encoder_q.model." + k: v for k, v in ref.state_dict().items()}, tmp_path / "nested.pt")
    nested = load_encoder(str(tmp_path / "nested.pt"))
    assert nested.method_hint == "mgca" and nested.load_report["prefix"] == "model.img_encoder_q.model."
    check_resnet_matches(nested, ref)


def test_ambiguous_unknown_prefixes_are_refused(tmp_path):
    ref = tv_tiny_resnet(seed=6)
    sd = {p + k: v for p in ("encoder_q.", "encoder_k.") for k, v in ref.state_dict().items()}
    torch.save(sd, tmp_path / "moco.pt")
    with pytest.raises(CheckpointError) as e:
        load_encoder(str(tmp_path / "moco.pt"))
    msg = str(e.value)
    assert "moco.pt" in msg and "'encoder_q.'" in msg and "'encoder_k.'" in msg


@pytest.mark.parametrize("wrap", ["plain", "mgca_lightning", "benchx_safetensors"])
def test_timm_vit_state_dicts(tmp_path, wrap):
    ref = timm_tiny_vit()
    sd = ref.state_dict()
    assert "head.weight" in sd and "cls_token" in sd
    if wrap == "plain":
        path = tmp_path / "vit.pth"
        torch.save(sd, path)
    elif wrap == "mgca_lightning":
        path = tmp_path / "mgca_vit.ckpt"
        full = {"img_encoder_q.model." + k: v for k, v in sd.items() if not k.startswith("head")}
        full.update(TEXT_AND_HEADS)
        torch.save({"state_dict": full, "epoch": 10}, path)
    else:
        from safetensors.torch import save_file

        path = tmp_path / "benchx_vit.safetensors"
        save_file({"visual.model." + k: v.contiguous() for k, v in sd.items()}, str(path))
    loaded = load_encoder(str(path))
    expected_format = "timm_vit" if wrap == "plain" else "lightning_prefixed"
    assert loaded.format == expected_format
    assert loaded.method_hint == {"plain": None, "mgca_lightning": "mgca", "benchx_safetensors": "benchx"}[wrap]
    assert loaded.load_report["missing"] == [] and loaded.load_report["unexpected"] == []
    check_vit_matches(loaded, ref)


def test_vit_rejects_wrong_input_size():
    enc = build_arch("vit_tiny_test", seed=0)
    with pytest.raises(ConfigError, match="32x32"):
        enc.forward_global(enc.prepare(grey(size=64)))


def test_vit_pos_embed_size_mismatch_is_explained(tmp_path):
    ref = timm_tiny_vit(img_size=64)  # 8x8 grid + CLS = 65 tokens; vit_tiny_test has 4x4 + 1
    torch.save(ref.state_dict(), tmp_path / "vit64.pth")
    with pytest.raises(CheckpointError) as e:
        load_encoder(str(tmp_path / "vit64.pth"))
    msg = str(e.value)
    assert "vit64.pth" in msg and "pos_embed" in msg and "64x64" in msg and "32x32" in msg
    with pytest.raises(CheckpointError, match="pos_embed"):  # also with an explicit --arch
        load_encoder(str(tmp_path / "vit64.pth"), arch="vit_tiny_test")


def test_torchscript_round_trip(tmp_path):
    ref = tv_tiny_resnet(seed=7)
    ref.fc = nn.Identity()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scripted = torch.jit.trace(ref, torch.zeros(1, 3, 64, 64))
        torch.jit.save(scripted, str(tmp_path / "enc.ts.pt"))
    loaded = load_encoder(str(tmp_path / "enc.ts.pt"))
    enc = loaded.encoder
    assert loaded.format == "torchscript" and enc.arch == "torchscript"
    assert enc.feature_dim == 512 and enc.contract == InputContract()
    x = enc.prepare(grey(size=64))
    with torch.no_grad():
        torch.testing.assert_close(enc.forward_global(x), ref(x))
    with pytest.raises(ConfigError, match="pyramid"):
        enc.forward_pyramid(x)
    # contract from the user's options
    c = InputContract.imagenet(input_size=64)
    assert load_encoder(str(tmp_path / "enc.ts.pt"), input_contract=c).encoder.contract == c
    with pytest.raises(ConfigError, match="--arch"):
        load_encoder(str(tmp_path / "enc.ts.pt"), arch="resnet18")


# ---------------------------------------------------------------------------------------
# refusals
# ---------------------------------------------------------------------------------------
def test_half_renamed_backbone_is_refused_unless_partial_allowed(tmp_path):
    ref = tv_tiny_resnet(seed=8)
    sd = {k: v for k, v in ref.state_dict().items() if not k.startswith("fc.")}
    keys = [k for k in sd if not k.endswith("num_batches_tracked")]
    renamed = keys[len(keys) // 2 :]
    assert any(k.startswith("layer4.") for k in renamed)
    bad = {("renamed_" + k if k in renamed else k): v for k, v in sd.items()}
    torch.save(
        {"state_dict": {"img_encoder_q.model." + k: v for k, v in bad.items()}, "epoch": 1}, tmp_path / "half.ckpt"
    )
    with pytest.raises(CheckpointError) as e:
        load_encoder(str(tmp_path / "half.ckpt"))
    msg = str(e.value)
    assert "half.ckpt" in msg and "lightning_prefixed" in msg and "resnet_tiny" in msg
    assert f"{len(renamed)} missing" in msg and f"{len(renamed)} unexpected" in msg
    assert renamed[0] in msg and "renamed_" + renamed[0] in msg
    assert "--allow-partial-load" in msg and "--arch" in msg

    loaded = load_encoder(str(tmp_path / "half.ckpt"), allow_partial=True)
    r = loaded.load_report
    assert r["partial"] is True
    assert r["missing"] == renamed
    assert sorted(r["unexpected"]) == sorted("renamed_" + k for k in renamed)
    assert r["n_loaded"] == len(keys) - len(renamed)
    own = loaded.encoder.state_dict()
    kept = keys[0]
    assert torch.equal(own[kept], sd[kept])


def test_deeper_checkpoint_with_explicit_arch_is_refused(tmp_path):
    """resnet18 weights into resnet_tiny: all required tensors exist, but extra blocks
    would be dropped silently; they must be reported as unexpected and refused."""
    import torchvision

    m = torchvision.models.resnet18()
    torch.save(m.state_dict(), tmp_path / "r18.pth")
    with pytest.raises(CheckpointError) as e:
        load_encoder(str(tmp_path / "r18.pth"), arch="resnet_tiny")
    assert "layer1.1.conv1.weight" in str(e.value) and "unexpected" in str(e.value)


def test_shape_mismatch_names_the_tensors(tmp_path):
    ref = tv_tiny_resnet(seed=9)
    sd = ref.state_dict()
    sd["layer4.0.conv2.weight"] = torch.zeros(512, 512, 1, 1)
    torch.save(sd, tmp_path / "bad_shape.pth")
    with pytest.raises(CheckpointError) as e:
        load_encoder(str(tmp_path / "bad_shape.pth"))
    msg = str(e.value)
    assert "layer4.0.conv2.weight" in msg and "(512, 512, 1, 1)" in msg and "(512, 512, 3, 3)" in msg


def test_pickled_objects_need_trust(tmp_path):
    ref = tv_tiny_resnet(seed=10)
    ckpt = {
        "state_dict": {"backbone." + k: v for k, v in ref.state_dict().items()},
        "epoch": 2,
        "hyper_parameters": argparse.Namespace(lr=1e-4, arch="resnet_tiny"),
    }
    path = tmp_path / "g2d_pickled.ckpt"
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError) as e:
        load_encoder(str(path))
    msg = str(e.value)
    assert "g2d_pickled.ckpt" in msg and "argparse.Namespace" in msg
    assert "--trust-checkpoint" in msg and "trust_pickle=True" in msg and "weights_only" in msg
    loaded = load_encoder(str(path), trust_pickle=True)
    assert loaded.method_hint == "g2d" and "weights_only=False" in loaded.load_report["read_with"]
    check_resnet_matches(loaded, ref)


def test_whole_pickled_module_loads_with_trust(tmp_path):
    ref = tv_tiny_resnet(seed=11)
    torch.save(ref, tmp_path / "model.pt")
    with pytest.raises(CheckpointError, match="--trust-checkpoint"):
        load_encoder(str(tmp_path / "model.pt"))
    check_resnet_matches(load_encoder(str(tmp_path / "model.pt"), trust_pickle=True), ref)


def test_unreadable_missing_and_unrecognised_files(tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        load_encoder(str(tmp_path / "nope.ckpt"))
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="junk.pt"):
        load_encoder(str(tmp_path / "junk.pt"))
    torch.save({"state_dict": {"foo.weight": torch.zeros(2)}}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="no known encoder layout") as e:
        load_encoder(str(tmp_path / "other.pt"))
    assert "other.pt" in str(e.value) and "foo.weight" in str(e.value)


# ---------------------------------------------------------------------------------------
# spec sources
# ---------------------------------------------------------------------------------------
def test_random_init_is_seeded_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = load_encoder("random:resnet_tiny")
    b = load_encoder("random:resnet_tiny@0")
    c = load_encoder("random:resnet_tiny@1")
    assert torch.equal(torch.get_rng_state(), before)
    sa, sb, sc = (x.encoder.state_dict() for x in (a, b, c))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa["conv1.weight"], sc["conv1.weight"])
    assert a.spec == b.spec == "random:resnet_tiny@0" and c.spec == "random:resnet_tiny@1"
    assert a.format == "random" and a.method_hint == "random_init"
    assert a.sha256 == hashlib.sha256(b"random:resnet_tiny@0").hexdigest() != c.sha256
    v1, v2 = load_encoder("random:vit_tiny_test@5"), load_encoder("random:vit_tiny_test@5")
    assert torch.equal(v1.encoder.pos_embed, v2.encoder.pos_embed)
    with pytest.raises(ConfigError, match="seed"):
        load_encoder("random:resnet_tiny@x")
    with pytest.raises(ConfigError, match="known architectures"):
        load_encoder("random:resnet9000")


def test_loaded_encoders_are_frozen():
    enc = load_encoder("random:resnet_tiny").encoder
    assert enc.frozen and not enc.training
    assert not any(p.requires_grad for p in enc.parameters())
    wrapper = nn.Sequential(enc, nn.Linear(512, 2)).train()
    assert not enc.training and wrapper[1].training  # BatchNorm stats stay fixed
    mean_before = enc.bn1.running_mean.clone()
    enc(enc.prepare(grey()))
    assert torch.equal(enc.bn1.running_mean, mean_before)


def test_imagenet_without_local_weights_names_file_and_url(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.delenv("MEDVLP_IMAGENET_WEIGHTS", raising=False)
    with pytest.raises(CheckpointError) as e:
        load_encoder("imagenet:resnet18")
    msg = str(e.value)
    expected = tmp_path / "torch_home" / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    assert str(expected) in msg
    assert "https://download.pytorch.org/models/resnet18-f37072fd.pth" in msg
    assert "MEDVLP_IMAGENET_WEIGHTS" in msg
    with pytest.raises(ConfigError, match="imagenet:resnet50"):
        load_encoder("imagenet:vit_tiny_test")


def test_imagenet_from_local_files(tmp_path, monkeypatch):
    import torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.delenv("MEDVLP_IMAGENET_WEIGHTS", raising=False)
    torch.manual_seed(12)
    m = torchvision.models.resnet18().eval()
    cache = tmp_path / "torch_home" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    # a file in the hub cache whose content does not match torchvision's hash is refused
    torch.save(m.state_dict(), cache / "resnet18-f37072fd.pth")
    with pytest.raises(CheckpointError, match="f37072fd"):
        load_encoder("imagenet:resnet18")
    # an explicit path via the environment variable is used as given
    own = tmp_path / "my_resnet18.pth"
    torch.save(m.state_dict(), own)
    monkeypatch.setenv("MEDVLP_IMAGENET_WEIGHTS", str(own))
    loaded = load_encoder("imagenet:resnet18")
    assert loaded.spec == "imagenet:resnet18@IMAGENET1K_V1" and loaded.method_hint == "imagenet"
    assert loaded.encoder.contract == InputContract.imagenet()
    assert loaded.load_report["weights_file"] == str(own)
    assert loaded.load_report["hash_matches_torchvision"] is False
    x = loaded.encoder.prepare(grey(b=1, size=64))
    m.fc = nn.Identity()
    with torch.no_grad():
        torch.testing.assert_close(loaded.encoder.forward_global(x), m(x))


FACTORY_MODULE = textwrap.dedent(
    """
    import torch
    from torch import nn
    from models import build_arch, InputContract

    def make_encoder():
        return build_arch("resnet_tiny", seed=3)

    class Pooled(nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.conv = nn.Conv2d(1, 6, 3)
        def forward(self, x):
            return self.conv(x).mean(dim=(2, 3))

    def make_plain():
        return Pooled()

    def make_with_contract():
        return Pooled(), {"mean": [0.4], "std": [0.2], "channels": 1, "input_size": 16}

    def not_a_model():
        return 42
    """
)


def test_module_function_factories(tmp_path, monkeypatch):
    (tmp_path / "my_encoders.py").write_text(FACTORY_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "my_encoders", raising=False)

    a = load_encoder("my_encoders:make_encoder")
    b = load_encoder("module:my_encoders:make_encoder")
    assert isinstance(a.encoder, Encoder) and a.encoder.arch == "resnet_tiny"
    assert a.spec == b.spec == "module:my_encoders:make_encoder" and a.format == "module"
    assert a.sha256 == hashlib.sha256(b"module:my_encoders:make_encoder").hexdigest()
    assert a.load_report["module_file"].endswith("my_encoders.py")
    ref = build_arch("resnet_tiny", seed=3)
    assert all(torch.equal(v, ref.state_dict()[k]) for k, v in a.encoder.state_dict().items())

    c = load_encoder("my_encoders:make_with_contract")
    assert c.encoder.contract == InputContract(mean=(0.4,), std=(0.2,), channels=1, input_size=16)
    assert c.encoder.feature_dim == 6
    x = c.encoder.prepare(grey(size=16))
    assert x.shape == (2, 1, 16, 16)
    assert c.encoder.forward_global(x).shape == (2, 6)
    with pytest.raises(ConfigError, match="pyramid"):
        c.encoder.forward_pyramid(x)
    p = load_encoder("my_encoders:make_plain", input_contract=InputContract(mean=(0.5,), std=(0.5,), channels=1))
    assert p.encoder.feature_dim == 6 and p.encoder.contract.channels == 1

    with pytest.raises(ConfigError, match="returned int"):
        load_encoder("my_encoders:not_a_model")
    with pytest.raises(ConfigError, match="no attribute"):
        load_encoder("my_encoders:missing_function")
    with pytest.raises(ConfigError, match=r"cannot import module 'no_such_pkg_xyz\.sub'.*PYTHONPATH"):
        load_encoder("no_such_pkg_xyz.sub:make")


def test_input_contract_override_and_fixed_vit_size():
    r = load_encoder("random:resnet_tiny", input_contract=InputContract.imagenet())
    assert r.encoder.contract == InputContract.imagenet()
    v = load_encoder("random:vit_tiny_test", input_contract=InputContract.imagenet())
    assert v.encoder.contract.input_size == 32 and v.encoder.contract.mean == InputContract.imagenet().mean
    with pytest.raises(ConfigError, match="32x32"):
        load_encoder("random:vit_tiny_test", input_contract=InputContract(input_size=224))


def test_single_channel_checkpoint_builds_single_channel_encoder(tmp_path):
    torch.manual_seed(13)
    ref = ResNet(BasicBlock, [1, 1, 1, 1])
    ref.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    ref.eval()
    torch.save(ref.state_dict(), tmp_path / "grey.pth")
    enc = load_encoder(str(tmp_path / "grey.pth")).encoder
    assert enc.contract.channels == 1 and enc.contract.mean == (0.5,)
    x = enc.prepare(grey(size=64))
    assert x.shape == (2, 1, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(enc.forward_global(x), tv_features(ref, x)[0])


def test_provenance_is_json_serialisable(tmp_path):
    import json

    ref = tv_tiny_resnet()
    torch.save(
        {"state_dict": {"gloria.img_encoder.model." + k: v for k, v in ref.state_dict().items()}, "epoch": 5},
        tmp_path / "gloria.ckpt",
    )
    prov = load_encoder(str(tmp_path / "gloria.ckpt")).provenance()
    text = json.dumps(prov)
    assert '"method_hint": "gloria"' in text and prov["encoder"]["arch"] == "resnet_tiny"
