"""ResNet-side public checkpoint layouts: BioViL (hi-ml-multimodal), MedKLIP, KAD and BenchX's
re-pretrained releases.

Each checkpoint is built here from torchvision modules arranged as the release's official code
arranges them (module names, nn.Sequential child indices, DataParallel prefix, the top-level keys
of the saved dict), with random weights: resnet_tiny-sized ones for scoring, and the full
ResNet-50 key set on the meta device (no memory, no download) to check the renaming and strict
loading against every real tensor name. Scoring goes through ``run_benchmark.py`` on the demo
suite (rsna_cls, 100%, seed 0, at most 40 images per split).
"""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
from torch import nn
from torchvision.models import resnet50
from torchvision.models.resnet import BasicBlock, ResNet

from benchmark.cli import main
from benchmark.errors import CheckpointError
from benchmark.results import read_result
from models import build_arch, load_encoder
from models.checkpoint_io import sha256_file
from models.formats import FORMATS, detect_format
from models.state_loading import load_backbone_state

from .cli_args import demo_cli_args

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py

IMAGENET = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225], "channels": 3, "input_size": None}
GREY01 = {"mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0], "channels": 3, "input_size": None}


# ---------------------------------------------------------------------------------------
# the releases' layouts, built from torchvision modules (no code under test)
# ---------------------------------------------------------------------------------------
def tiny_resnet(seed: int = 3) -> ResNet:
    torch.manual_seed(seed)
    m = ResNet(BasicBlock, [1, 1, 1, 1])
    for mod in m.modules():  # non-trivial BatchNorm statistics, so they must be loaded too
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.2, 0.2)
            mod.running_var.uniform_(0.5, 1.5)
    return m.eval()


def backbone_keys(resnet: ResNet, *, layer4: bool) -> list[str]:
    """The tensors a strict load must take from the checkpoint (BN counters are optional)."""
    drop = ("fc.",) if layer4 else ("fc.", "layer4.")
    return [k for k in resnet.state_dict() if not k.startswith(drop) and not k.endswith("num_batches_tracked")]


def biovil_state(resnet: ResNet, joint: int = 128, temporal: bool = False) -> dict:
    """hi-ml-multimodal ImageModel: encoder (ImageEncoder) .encoder (full torchvision ResNet,
    fc kept) + projector (MLP with 1x1 convs: model.0 conv, model.1 BN, model.3 conv)."""
    width = resnet.fc.in_features
    model = nn.Module()
    model.encoder = nn.Module()
    model.encoder.encoder = resnet
    model.projector = nn.Module()
    model.projector.model = nn.Sequential(
        nn.Conv2d(width, joint, 1, bias=False), nn.BatchNorm2d(joint), nn.ReLU(), nn.Conv2d(joint, joint, 1)
    )
    if temporal:  # BioViL-T's MultiImageEncoder additions
        model.encoder.backbone_to_vit = nn.Conv2d(width, 256, 1, bias=False)
        model.encoder.missing_previous_emb = nn.Parameter(torch.zeros(1, 256, 1, 1))
    return model.state_dict()


def medklip_model(resnet: ResNet, d_model: int = 256) -> nn.Module:
    """MedKLIP: res_features = Sequential(children[:-3]) (no layer4), res_l1/res_l2, query decoder."""
    num = resnet.fc.in_features // 2
    model = nn.Module()
    model.disease_embedding_layer = nn.Linear(768, 256)
    model.cl_fc = nn.Linear(256, 768)
    model.res_features = nn.Sequential(*list(resnet.children())[:-3])
    model.res_l1 = nn.Linear(num, num)
    model.res_l2 = nn.Linear(num, d_model)
    model.decoder = nn.TransformerDecoder(nn.TransformerDecoderLayer(d_model, 4, 64), 1, nn.LayerNorm(d_model))
    model.classifier = nn.Linear(d_model, 2)
    return model


def medklip_checkpoint(resnet: ResNet, config: dict | None = None) -> dict:
    """train_MedKLIP.py: {'model': DataParallel state dict, 'optimizer', 'lr_scheduler', 'config', 'epoch'}."""
    state = {"module." + k: v for k, v in medklip_model(resnet).state_dict().items()}
    return {
        "model": state,
        "optimizer": {"state": {}, "param_groups": [{"lr": 1e-4, "weight_decay": 0.02, "params": [0, 1]}]},
        "lr_scheduler": {"t_initial": 100, "last_epoch": 7},
        "config": config if config is not None else {"res_base_model": "resnet50", "d_model": 256, "H": 4, "N": 4},
        "epoch": 7,
    }


def kad_image_encoder(resnet: ResNet, layer4: bool = False) -> nn.Module:
    """KAD ModelRes (children[:-3]) / ModelRes512 (children[:-2]): keeps `resnet` AND res_features."""
    width = resnet.fc.in_features if layer4 else resnet.fc.in_features // 2
    model = nn.Module()
    model.resnet = resnet
    model.res_features = nn.Sequential(*list(resnet.children())[: -2 if layer4 else -3])
    model.res_l1 = nn.Linear(width, width)
    model.res_l2 = nn.Linear(width, 768)
    return model


def kad_checkpoint(resnet: ResNet, layer4: bool = False) -> dict:
    """A3_CLIP/main.py: {'model': TQN, 'image_encoder', 'text_encoder', 'optimizer', 'lr_scheduler', 'config',
    'epoch'}."""
    text = {
        "bert_model.embeddings.word_embeddings.weight": torch.randn(30, 8),
        "bert_model.encoder.layer.0.attention.self.query.weight": torch.randn(8, 8),
        "mlp_embed.0.weight": torch.randn(8, 8),
        "mlp_embed.2.weight": torch.randn(8, 8),
        "logit_scale": torch.tensor(2.66),
    }
    tqn = {"decoder.layers.0.self_attn.in_proj_weight": torch.randn(24, 8), "mlp_head.0.weight": torch.randn(2, 8)}
    return {
        "model": tqn,
        "image_encoder": kad_image_encoder(resnet, layer4).state_dict(),
        "text_encoder": text,
        "optimizer": {"state": {}, "param_groups": [{"lr": 1e-4, "params": [0]}]},
        "lr_scheduler": {"last_epoch": 3},
        "config": {"batch_size": 64, "image_res": 224},
        "epoch": 3,
    }


def benchx_convirt_checkpoint(resnet: ResNet) -> dict:
    """BenchX ConVIRT.pth: {'model': ...} with VisualEncoder's named Sequential under visual.model.
    (torchvision children up to avgpool, no fc), the text encoder and both projections."""
    visual = nn.Sequential(OrderedDict((n, c) for n, c in resnet.named_children() if n != "fc"))
    state = {f"visual.model.{k}": v for k, v in visual.state_dict().items()}
    state["linguistic.model.embeddings.word_embeddings.weight"] = torch.randn(30, 8)
    state["vis_proj.0.weight"] = torch.randn(8, resnet.fc.in_features)
    state["lin_proj.0.weight"] = torch.randn(8, 8)
    return {"model": state}


def benchx_mflag_state(resnet: ResNet) -> dict:
    """BenchX M-FLAG: ResNet_CXRBert's plain state dict: encoder (fc = Identity), proj_v, proj_t, lm_model."""
    state = {f"encoder.{k}": v for k, v in resnet.state_dict().items() if not k.startswith("fc.")}
    state["proj_v.0.weight"] = torch.randn(16, resnet.fc.in_features)
    state["proj_t.0.weight"] = torch.randn(16, 768)
    state["lm_model.bert.encoder.layer.0.attention.self.query.weight"] = torch.randn(8, 8)
    return state


def trunk_forward(resnet: ResNet, x: torch.Tensor, layer4: bool) -> torch.Tensor:
    """The release's own global feature: avg-pooled output of its res_features Sequential."""
    seq = nn.Sequential(*list(resnet.children())[: -2 if layer4 else -3])
    return torch.flatten(nn.functional.adaptive_avg_pool2d(seq(x), 1), 1)


def check_weights_are_the_checkpoints(path, resnet: ResNet, *, layer4: bool) -> None:
    """Every backbone tensor of the loaded encoder equals the release model's, and the global
    feature equals the one the release's own module computes."""
    enc = load_encoder(str(path)).encoder
    own, ref = enc.state_dict(), resnet.state_dict()
    keys = backbone_keys(resnet, layer4=layer4)
    assert sorted(k for k in own if not k.endswith("num_batches_tracked")) == sorted(keys)
    assert all(torch.equal(own[k], ref[k]) for k in keys)
    x = enc.prepare(torch.rand(2, 1, 64, 64, generator=torch.Generator().manual_seed(0)))
    with torch.no_grad():
        torch.testing.assert_close(enc.forward_global(x), trunk_forward(resnet, x, layer4), rtol=0, atol=0)


def score(demo_root, tmp_path, path):
    """Score ``path`` on one demo classification unit through the CLI (rsna_cls, 100%, seed 0;
    ``--limit 40`` images per split keeps it at a few seconds); the result file."""
    out = tmp_path / "out"
    argv = demo_cli_args(
        demo_root, tmp_path / "cache", out, "--tasks", "rsna_cls", "--fractions", "100", "--seeds", "0",
        "--limit", "40", encoder=str(path),
    )  # fmt: skip
    assert main(argv) == 0
    return read_result(out / "rsna_cls" / "rsna_cls_frac100_seed0.json")


def check_result(result, path, *, fmt, hint, contract, arch, n_loaded):
    enc = result.encoder
    assert (enc["format"], enc["method_hint"], enc["arch"]) == (fmt, hint, arch)
    assert enc["contract"] == contract and enc["sha256"] == sha256_file(path)
    report = enc["load_report"]
    assert report["format_source"] == FORMATS[fmt].source and report["contract_origin"] != "architecture default"
    assert report["n_loaded"] == report["n_expected"] == n_loaded and not report["partial"]
    assert 0.0 <= result.value <= 1.0


# ---------------------------------------------------------------------------------------
# BioViL
# ---------------------------------------------------------------------------------------
def test_biovil_image_model_scores_through_the_cli(demo_root, tmp_path):
    resnet = tiny_resnet()
    path = tmp_path / "biovil_image_resnet50_proj_size_128.pt"
    torch.save(biovil_state(resnet), path)
    result = score(demo_root, tmp_path, path)
    check_result(result, path, fmt="biovil", hint="biovil", contract=GREY01, arch="resnet_tiny", n_loaded=60)
    report = result.encoder["load_report"]
    assert report["prefix"] == "encoder.encoder." and report["head_ignored"] == ["fc.weight", "fc.bias"]
    # projector: conv weight, 5 BatchNorm tensors, conv weight + bias
    assert report["n_ignored"] == 8 and report["ignored_by_prefix"] == {"projector": 8}
    assert report["projector"] == "8 tensors, joint space 128-d" and report["text_side"] is None
    assert "no mean/std" in report["contract_origin"]
    check_weights_are_the_checkpoints(path, resnet, layer4=True)


def test_biovil_full_resnet50_key_set_and_biovil_t_refusal(tmp_path):
    with torch.device("meta"):
        state = biovil_state(resnet50())
        encoder = build_arch("resnet50")
    fmt = detect_format(state)
    assert fmt.name == "biovil"
    backbone, info = fmt.extract(state)
    report = load_backbone_state(encoder, backbone, where="biovil")
    assert report["n_loaded"] == report["n_expected"] == 265 and report["head_ignored"] == ["fc.weight", "fc.bias"]
    assert not report["missing"] and not report["unexpected"] and info["n_ignored"] == 8

    path = tmp_path / "biovil_t_image_model_proj_size_128.pt"
    torch.save(biovil_state(tiny_resnet(), temporal=True), path)
    with pytest.raises(CheckpointError) as error:
        load_encoder(str(path))
    message = str(error.value)
    assert (
        "BioViL-T" in message and "encoder.backbone_to_vit*" in message and "encoder.missing_previous_emb*" in message
    )
    assert "temporal ViT pooler" in message and "encoder.encoder." in message


# ---------------------------------------------------------------------------------------
# MedKLIP (official and BenchX's MedKLIP.pth: same code, same layout)
# ---------------------------------------------------------------------------------------
def test_medklip_checkpoint_scores_its_layer3_trunk_through_the_cli(demo_root, tmp_path):
    resnet = tiny_resnet()
    path = tmp_path / "checkpoint_final.pth"
    torch.save(medklip_checkpoint(resnet, {"res_base_model": "resnet_tiny"}), path)
    result = score(demo_root, tmp_path, path)
    n_trunk = len(backbone_keys(resnet, layer4=False))
    assert n_trunk == 45  # resnet_tiny: 60 backbone tensors, 15 of them in layer4
    check_result(result, path, fmt="medklip", hint="medklip", contract=IMAGENET, arch="resnet_tiny_layer3", n_loaded=45)
    assert result.encoder["feature_dim"] == 256 and result.encoder["pyramid_channels"] == [64, 64, 128, 256, 256]
    report = result.encoder["load_report"]
    assert report["prefix"] == "module.res_features." and report["epoch"] == 7
    assert report["ignored_by_prefix"]["res_l1"] == 2 and report["ignored_by_prefix"]["res_l2"] == 2
    assert set(report["ignored_by_prefix"]) == {
        "disease_embedding_layer",
        "cl_fc",
        "res_l1",
        "res_l2",
        "decoder",
        "classifier",
    }
    check_weights_are_the_checkpoints(path, resnet, layer4=False)


def test_medklip_full_resnet50_key_set_and_inconsistent_config(tmp_path):
    with torch.device("meta"):
        ckpt = medklip_checkpoint(resnet50())
        encoder = build_arch("resnet50_layer3")
    fmt = detect_format(ckpt)
    assert fmt.name == "medklip"
    backbone, info = fmt.extract(ckpt)
    assert info["arch"] == "resnet50_layer3" and info["config_res_base_model"] == "resnet50"
    report = load_backbone_state(encoder, backbone, where="medklip")
    assert report["n_loaded"] == report["n_expected"] == 215  # ResNet-50's 265 minus layer4's 50
    assert not report["missing"] and not report["unexpected"] and not report["head_ignored"]
    assert encoder.feature_dim == 1024

    path = tmp_path / "medklip.pth"  # tiny tensors, but the config names ResNet-50
    torch.save(medklip_checkpoint(tiny_resnet()), path)
    with pytest.raises(CheckpointError, match=r"res_base_model='resnet50' but the tensors .* resnet_tiny_layer3"):
        load_encoder(str(path))


# ---------------------------------------------------------------------------------------
# KAD
# ---------------------------------------------------------------------------------------
def test_kad_checkpoint_scores_through_the_cli(demo_root, tmp_path):
    resnet = tiny_resnet()
    path = tmp_path / "best_valid.pt"
    torch.save(kad_checkpoint(resnet), path)
    result = score(demo_root, tmp_path, path)
    check_result(result, path, fmt="kad", hint="kad", contract=IMAGENET, arch="resnet_tiny_layer3", n_loaded=45)
    report = result.encoder["load_report"]
    assert report["container"] == "image_encoder" and report["variant"] == "ModelRes (layer3 features, 224 px)"
    # resnet.* holds the 54 trunk tensors (9 BN counters included) again, plus layer4 (18) and fc (2) KAD never used
    assert report["duplicate_copy_checked"] == 54 and report["unused_by_kad"] == 20
    assert report["ignored_by_prefix"] == {"resnet": 74, "res_l1": 2, "res_l2": 2}
    assert report["text_side"].startswith("KAD text encoder (text_encoder: 5 tensors, 2 of them bert_model.*)")
    check_weights_are_the_checkpoints(path, resnet, layer4=False)


def test_kad_512_variant_densenet_and_edited_copies(tmp_path):
    with torch.device("meta"):
        ckpt = kad_checkpoint(resnet50(), layer4=True)
        encoder = build_arch("resnet50")
    fmt = detect_format(ckpt)
    backbone, info = fmt.extract(ckpt)
    assert (fmt.name, info["arch"], info["variant"]) == ("kad", "resnet50", "ModelRes512 (layer4 features, 512 px)")
    report = load_backbone_state(encoder, backbone, where="kad")
    assert report["n_loaded"] == report["n_expected"] == 265 and info["unused_by_kad"] == 2  # only resnet.fc

    resnet = tiny_resnet()
    path = tmp_path / "kad512.pt"
    torch.save(kad_checkpoint(resnet, layer4=True), path)
    check_weights_are_the_checkpoints(path, resnet, layer4=True)
    # a re-saved image encoder on its own is recognised by its two backbone copies
    alone = tmp_path / "kad_image_encoder.pt"
    torch.save(kad_image_encoder(resnet).state_dict(), alone)
    assert load_encoder(str(alone)).format == "kad"

    edited = kad_checkpoint(tiny_resnet())
    edited["image_encoder"]["res_features.6.0.conv1.weight"] = torch.zeros_like(
        edited["image_encoder"]["res_features.6.0.conv1.weight"]
    )
    torch.save(edited, tmp_path / "edited.pt")
    with pytest.raises(CheckpointError, match=r"two copies of the backbone differ in 1 tensors .*resnet\.layer3\.0"):
        load_encoder(str(tmp_path / "edited.pt"))

    dense = {
        "image_encoder": {"dense_features.conv0.weight": torch.zeros(4, 3, 7, 7), "dense_l1.weight": torch.zeros(4, 4)}
    }
    torch.save(dense, tmp_path / "kad_densenet.pt")
    with pytest.raises(CheckpointError, match="KAD's DenseNet-121 image encoder .* no DenseNet architecture"):
        load_encoder(str(tmp_path / "kad_densenet.pt"))


# ---------------------------------------------------------------------------------------
# BenchX's re-pretrained releases and detection order
# ---------------------------------------------------------------------------------------
def test_benchx_convirt_release_scores_through_the_cli(demo_root, tmp_path):
    resnet = tiny_resnet()
    path = tmp_path / "ConVIRT.pth"
    torch.save(benchx_convirt_checkpoint(resnet), path)
    result = score(demo_root, tmp_path, path)
    default = {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "channels": 3, "input_size": None}
    enc = result.encoder
    assert (enc["format"], enc["method_hint"], enc["contract"]) == ("lightning_prefixed", "benchx", default)
    report = enc["load_report"]
    assert report["prefix"] == "visual.model." and report["container"] == "model" and report["n_ignored"] == 3
    assert report["n_loaded"] == report["n_expected"] == 60
    check_weights_are_the_checkpoints(path, resnet, layer4=True)


@pytest.mark.parametrize(
    "release, fmt, hint, arch, claimed",
    [
        ("ConVIRT.pth", "lightning_prefixed", "benchx", "resnet50", {"lightning_prefixed"}),
        ("GLoRIA.ckpt", "lightning_prefixed", "gloria", "resnet50", {"lightning_prefixed"}),
        ("MGCA-resnet50.ckpt", "lightning_prefixed", "mgca", "resnet50", {"lightning_prefixed"}),
        ("M-FLAG.pth", "lightning_prefixed", "mflag", "resnet50", {"lightning_prefixed"}),
        ("MedKLIP.pth", "medklip", "medklip", "resnet50_layer3", {"medklip"}),
        # the generic prefix discovery would take encoder.encoder. too (method unknown); biovil is tried first
        ("biovil_image_resnet50_proj_size_128.pt", "biovil", "biovil", "resnet50", {"biovil", "lightning_prefixed"}),
        ("kad_best_valid.pt", "kad", "kad", "resnet50_layer3", {"kad"}),
    ],
)
def test_full_size_layouts_are_detected_unambiguously(release, fmt, hint, arch, claimed):
    """BenchX's ResNet releases store the image encoder under a prefix the lightning_prefixed
    table knows (medvlm2mmseg.py: visual.model., gloria.img_encoder.model.,
    img_encoder_q.model., encoder.) or in MedKLIP's layout; with the new formats in front of
    it, each full ResNet-50 layout is claimed by exactly one format and loads strictly."""
    with torch.device("meta"):
        resnet = resnet50()
        lightning = {"epoch": 49, "global_step": 1000, "pytorch-lightning_version": "1.9.0"}
        tv = {k: v for k, v in resnet.state_dict().items()}
        obj = {
            "ConVIRT.pth": lambda: benchx_convirt_checkpoint(resnet),
            "GLoRIA.ckpt": lambda: {
                "state_dict": {f"gloria.img_encoder.model.{k}": v for k, v in tv.items()},
                **lightning,
            },
            "MGCA-resnet50.ckpt": lambda: {
                "state_dict": {f"img_encoder_q.model.{k}": v for k, v in tv.items()},
                **lightning,
            },
            "M-FLAG.pth": lambda: benchx_mflag_state(resnet),
            "MedKLIP.pth": lambda: medklip_checkpoint(resnet),
            "biovil_image_resnet50_proj_size_128.pt": lambda: biovil_state(resnet),
            "kad_best_valid.pt": lambda: kad_checkpoint(resnet),
        }[release]()
        encoder = build_arch(arch)
    assert {f.name for f in FORMATS.values() if f.detect(obj)} == claimed
    assert detect_format(obj).name == fmt
    backbone, info = FORMATS[fmt].extract(obj)
    assert info["method_hint"] == hint
    report = load_backbone_state(encoder, backbone, where=release)
    assert report["n_loaded"] == report["n_expected"] and not report["missing"] and not report["unexpected"]


def test_new_formats_leave_the_existing_layouts_alone(tmp_path):
    """M-FLAG's encoder.* beside BioViL's encoder.encoder.*: each is read by its own format."""
    resnet = tiny_resnet()
    torch.save(benchx_mflag_state(resnet), tmp_path / "mflag.pth")
    loaded = load_encoder(str(tmp_path / "mflag.pth"))
    assert (loaded.format, loaded.method_hint, loaded.load_report["prefix"]) == (
        "lightning_prefixed",
        "mflag",
        "encoder.",
    )
    torch.save(biovil_state(resnet), tmp_path / "biovil.pt")
    assert load_encoder(str(tmp_path / "biovil.pt")).format == "biovil"
    torch.save(resnet.state_dict(), tmp_path / "tv.pth")
    assert load_encoder(str(tmp_path / "tv.pth")).format == "torchvision_resnet"
    # a KAD image encoder's resnet.* copy alone (no res_features) stays a discovered prefix
    torch.save({f"resnet.{k}": v for k, v in resnet.state_dict().items()}, tmp_path / "prefixed.pth")
    assert load_encoder(str(tmp_path / "prefixed.pth")).format == "lightning_prefixed"
