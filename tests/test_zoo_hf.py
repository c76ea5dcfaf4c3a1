"""Hugging Face model folders (ViT, DINOv2, Swin, CLIP vision, full CLIP, a ViT + BERT dual encoder)
and MedCLIP checkpoints (ResNet and Swin): tiny random models written in the released layouts
(transformers' ``save_pretrained``; MedCLIP's ``MedCLIPModel`` state dict), loaded through
``load_encoder``, compared with the transformers / torchvision models' own outputs, refused when a
tensor is missing, and scored end to end on the demo suite."""

from __future__ import annotations

import hashlib
import json
import math
import shutil

import pytest
import torch

from benchmark.cli import main
from benchmark.errors import CheckpointError, ConfigError
from benchmark.results import read_result
from models.checkpoint_io import sha256_file, sha256_text
from models.loading import load_encoder

from .cli_args import demo_cli_args

pytestmark = pytest.mark.usefixtures("one_torch_thread")

T = pytest.importorskip("transformers")
from safetensors.torch import load_file, save_file  # noqa: E402

MEDCLIP_MEAN, MEDCLIP_STD = 0.5862785803043838, 0.27950088968644304  # MedCLIP's medclip/constants.py
TINY = dict(hidden_size=32, num_attention_heads=2, intermediate_size=64)
SWIN = dict(image_size=64, patch_size=4, embed_dim=16, depths=[1, 1, 2, 1], num_heads=[1, 2, 2, 4], window_size=2)
FOLDERS = ("vit", "dinov2", "swin", "clip_vision", "clip", "dual")
MEDCLIP = ("medclip_resnet", "medclip_swin")
SUPERVISED = ("chexpert_cls", "rsna_cls", "covidx_cls", "siim_seg", "rsna_seg", "rsna_det", "objectcxr_det")


def _bert():
    return T.BertModel(T.BertConfig(num_hidden_layers=2, vocab_size=60, max_position_embeddings=16, **TINY))


def _medclip_file(path, vision: dict, extra: dict):
    """A MedCLIPModel state dict (medclip/modeling_medclip.py): vision_model.model.*, the BERT
    text_model.model.* (transformers 4.23 kept embeddings.position_ids), text_model.projection_head,
    logit_scale."""
    state = {f"vision_model.model.{k}": v for k, v in vision.items()}
    state.update(extra)
    state.update({f"text_model.model.{k}": v for k, v in _bert().state_dict().items()})
    state["text_model.model.embeddings.position_ids"] = torch.arange(16)[None]
    state["text_model.projection_head.weight"] = torch.randn(8, 32)
    state["logit_scale"] = torch.tensor(math.log(1 / 0.07))
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    """name -> (path to load, the reference model, its preprocessor or None)."""
    from torchvision.models.resnet import BasicBlock, ResNet

    root = tmp_path_factory.mktemp("zoo")
    torch.manual_seed(0)
    imagenet = dict(image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225])
    models = {
        "vit": (
            T.ViTModel(T.ViTConfig(num_hidden_layers=4, image_size=32, patch_size=8, **TINY)),
            T.ViTImageProcessor(size={"height": 32, "width": 32}, image_mean=[0.45] * 3, image_std=[0.28] * 3),
        ),
        # rad-dino's kind of folder: Dinov2Model, patch 14, its own grey mean/std, shortest edge + centre crop
        "dinov2": (
            T.Dinov2Model(T.Dinov2Config(num_hidden_layers=2, image_size=56, patch_size=14, mlp_ratio=2, **TINY)),
            T.BitImageProcessor(
                size={"shortest_edge": 56},
                crop_size={"height": 56, "width": 56},
                image_mean=[0.53] * 3,
                image_std=[0.26] * 3,
            ),
        ),
        "swin": (T.SwinModel(T.SwinConfig(**SWIN, mlp_ratio=2.0)), T.ViTImageProcessor(size=64, **imagenet)),
        "clip_vision": (
            T.CLIPVisionModel(T.CLIPVisionConfig(num_hidden_layers=2, image_size=32, patch_size=8, **TINY)),
            T.CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
        ),
        "clip": (
            T.CLIPModel(
                T.CLIPConfig(
                    text_config=dict(
                        num_hidden_layers=2, vocab_size=60, max_position_embeddings=16, bos_token_id=0, eos_token_id=2
                    )
                    | TINY,
                    vision_config=dict(num_hidden_layers=2, image_size=32, patch_size=8) | TINY,
                    projection_dim=16,
                )
            ),
            T.CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
        ),
        "dual": (
            T.VisionTextDualEncoderModel(
                vision_model=T.ViTModel(T.ViTConfig(num_hidden_layers=2, image_size=32, patch_size=8, **TINY)),
                text_model=_bert(),
            ),
            None,
        ),
    }
    out = {}
    for name, (model, processor) in models.items():
        model.eval().save_pretrained(root / name)
        if processor is not None:
            processor.save_pretrained(root / name)
        out[name] = (root / name, model, processor)

    resnet = ResNet(BasicBlock, [1, 1, 1, 1]).eval()
    resnet.fc = torch.nn.Linear(512, 8, bias=False)  # MedCLIP's 512-d projection replaces fc
    out["medclip_resnet"] = (
        _medclip_file(root / "medclip-resnet" / "pytorch_model.bin", resnet.state_dict(), {}),
        resnet,
        None,
    )
    swin = T.SwinModel(T.SwinConfig(**SWIN, mlp_ratio=2.0)).eval()
    swin.save_pretrained(root / "swin-layout")  # the checkpoint names of transformers
    vision = load_file(root / "swin-layout" / "model.safetensors")
    for key in [k for k in vision if k.endswith("attention.self.relative_position_bias_table")]:
        w = int(math.isqrt(vision[key].shape[0]) + 1) // 2  # transformers 4.2x saved this buffer too
        vision[key.replace("relative_position_bias_table", "relative_position_index")] = torch.zeros(
            w * w, w * w, dtype=torch.long
        )
    projection = {"vision_model.projection_head.weight": torch.randn(8, 128)}
    out["medclip_swin"] = (_medclip_file(root / "medclip-vit" / "pytorch_model.bin", vision, projection), swin, None)
    return out


def _grey(n: int, size: int, seed: int = 1) -> torch.Tensor:
    return torch.rand(n, 1, size, size, generator=torch.Generator().manual_seed(seed))


def _reference_global(name: str, model, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        if name in ("vit", "dinov2"):
            return model(pixel_values=x).last_hidden_state[:, 0]
        if name == "clip":
            return model.vision_model(pixel_values=x).pooler_output
        if name == "dual":
            return model.vision_model(pixel_values=x).last_hidden_state[:, 0]
        if name == "medclip_resnet":  # torchvision's forward without the fc projection
            stem = model.maxpool(model.relu(model.bn1(model.conv1(x))))
            return torch.flatten(model.avgpool(model.layer4(model.layer3(model.layer2(model.layer1(stem))))), 1)
        return model(pixel_values=x).pooler_output  # swin, clip_vision, medclip_swin


# ---------------------------------------------------------------------------------------------
# loading: format, contract, features
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", FOLDERS)
def test_model_folders_load_with_their_contract_and_the_models_own_features(zoo, name):
    folder, model, processor = zoo[name]
    loaded = load_encoder(str(folder))
    enc, report = loaded.encoder, loaded.load_report
    assert loaded.format == "hf_folder" and loaded.spec == str(folder.resolve()) and enc.frozen
    assert report["format_source"] == "https://github.com/huggingface/transformers"
    assert report["n_loaded"] == report["n_expected"] > 0 and report["missing"] == report["unexpected"] == []
    if processor is not None:
        pre = json.loads((folder / "preprocessor_config.json").read_text())
        size = pre["crop_size"]["height"] if "crop_size" in pre else pre["size"]["height"]
        assert report["contract_origin"] == "checkpoint config (preprocessor_config.json)"
        assert enc.contract.mean == pytest.approx(pre["image_mean"]) and enc.contract.std == pytest.approx(
            pre["image_std"]
        )
        assert enc.contract.input_size == size
        # prepare() gives what the folder's own image processor gives for the same grey pixels
        grey = (_grey(2, size) * 255).round() / 255
        pixels = [(g[0].numpy() * 255).round().astype("uint8").repeat(3).reshape(size, size, 3) for g in grey]
        want = processor(pixels, do_resize=False, do_center_crop=False, return_tensors="pt")["pixel_values"]
        torch.testing.assert_close(enc.prepare(grey), want, rtol=0, atol=1e-5)
    else:
        assert report["contract_origin"].startswith("format default (no preprocessor_config.json")
        assert enc.contract.mean == (0.5,) * 3 and enc.contract.input_size == 32
    x = enc.prepare(_grey(2, enc.contract.input_size))
    with torch.no_grad():
        got = enc.forward_global(x)
    torch.testing.assert_close(got, _reference_global(name, model, x), rtol=1e-5, atol=1e-5)
    assert enc.describe()["global_feature"] == report["global_feature"]
    with torch.no_grad():
        levels = enc.forward_pyramid(enc.prepare(_grey(2, 64)))
    assert enc.pyramid_strides == (4, 8, 16, 32)
    assert [tuple(m.shape) for m in levels] == [
        (2, c, 64 // s, 64 // s) for c, s in zip(enc.pyramid_channels, (4, 8, 16, 32))
    ]


def test_vit_pyramid_is_the_interpolated_models_block_outputs(zoo):
    folder, model, _ = zoo["vit"]
    enc = load_encoder(str(folder)).encoder
    x = enc.prepare(_grey(2, 64))  # twice the model's 32 px: position embeddings interpolated to 8x8
    with torch.no_grad():
        levels = enc.forward_pyramid(x)
        hidden = model(pixel_values=x, interpolate_pos_encoding=True, output_hidden_states=True).hidden_states
    assert enc.pyramid_blocks == (0, 1, 2, 3) and len(hidden) == 5
    grid = hidden[3][:, 1:].transpose(1, 2).reshape(2, 32, 8, 8)  # after block 2 (0-based), at patch stride 8
    torch.testing.assert_close(levels[2], torch.nn.functional.interpolate(grid, size=(4, 4), mode="bilinear"))
    torch.testing.assert_close(levels[1], hidden[2][:, 1:].transpose(1, 2).reshape(2, 32, 8, 8))


def test_swin_pyramid_is_its_four_stage_outputs_at_any_size(zoo):
    folder, model, _ = zoo["swin"]
    enc = load_encoder(str(folder)).encoder
    assert enc.pyramid_channels == (16, 32, 64, 128) and enc.feature_dim == 128
    # the demo's detection size; 32 px makes the last stage (1x1) smaller than a window, where transformers'
    # own per-call window clamp fails and changes the blocks for later calls
    for size in (96, 32):
        x = enc.prepare(_grey(2, size))
        with torch.no_grad():
            levels = enc.forward_pyramid(x)
            out = enc.hf(pixel_values=x, always_partition=True)
        assert [tuple(m.shape[1:]) for m in levels] == [
            (16 * 2**i, size // 4 // 2**i, size // 4 // 2**i) for i in range(4)
        ]
        # the last stage's output, through the final layernorm, is the model's last hidden state
        tokens = levels[3].flatten(2).transpose(1, 2)
        torch.testing.assert_close(enc.hf.layernorm(tokens), out.last_hidden_state, rtol=1e-5, atol=1e-5)
    # a call at another size leaves the native features as transformers computes them
    x = enc.prepare(_grey(2, 64))
    with torch.no_grad():
        torch.testing.assert_close(enc.forward_global(x), model(pixel_values=x).pooler_output, rtol=1e-5, atol=1e-5)


def test_full_clip_and_dual_encoder_report_their_text_side(zoo):
    clip = load_encoder(str(zoo["clip"][0])).load_report
    assert clip["prefix"] == "vision_model." and clip["model_type"] == "clip"
    n_text = sum(1 for k in load_file(zoo["clip"][0] / "model.safetensors") if k.startswith("text_model."))
    assert clip["ignored_by_group"] == {
        "logit_scale": 1,
        "text_model": n_text,
        "text_projection": 1,
        "visual_projection": 1,
    }
    assert clip["n_ignored"] == n_text + 3
    assert clip["text_side"].startswith("CLIP text tower (2 layers) in text_config (clip): ")
    # the image embedding of CLIP is the projection of the encoder's global feature
    model = zoo["clip"][1]
    enc = load_encoder(str(zoo["clip"][0])).encoder
    x = enc.prepare(_grey(2, 32))
    with torch.no_grad():
        torch.testing.assert_close(
            model.visual_projection(enc.forward_global(x)), model.get_image_features(pixel_values=x).pooler_output
        )
    dual = load_encoder(str(zoo["dual"][0])).load_report
    assert dual["text_side"].startswith("BERT text tower (2 layers) in text_config (vision-text-dual-encoder)")
    assert sorted(dual["head_ignored"]) == ["pooler.dense.bias", "pooler.dense.weight"]  # ViTModel's unused pooler


def test_clip_vision_folder_in_the_transformers_4_layout(zoo, tmp_path):
    """transformers 4 wrote CLIPVisionModel keys under vision_model. with an embeddings.position_ids buffer."""
    folder, model, _ = zoo["clip_vision"]
    old = tmp_path / "clip4"
    shutil.copytree(folder, old)
    state = {f"vision_model.{k}": v for k, v in load_file(folder / "model.safetensors").items()}
    state["vision_model.embeddings.position_ids"] = torch.arange(17)[None]
    (old / "model.safetensors").unlink()
    torch.save(state, old / "pytorch_model.bin")
    loaded = load_encoder(str(old))
    assert loaded.load_report["prefix"] == "vision_model." and loaded.load_report["read_with"] == "torch.load"
    assert loaded.load_report["buffers_skipped"] == ["embeddings.position_ids"]
    x = loaded.encoder.prepare(_grey(2, 32))
    with torch.no_grad():
        torch.testing.assert_close(loaded.encoder.forward_global(x), model(pixel_values=x).pooler_output)


def test_image_classification_folder_uses_its_backbone_and_ignores_the_classifier(tmp_path):
    torch.manual_seed(0)
    model = T.ViTForImageClassification(
        T.ViTConfig(num_hidden_layers=2, image_size=32, patch_size=8, num_labels=3, **TINY)
    )
    model.eval().save_pretrained(tmp_path / "vit-cls")
    loaded = load_encoder(str(tmp_path / "vit-cls"))
    report = loaded.load_report
    assert report["prefix"] == "vit." and report["ignored_by_group"] == {"classifier": 2}
    assert report["architectures"] == ["ViTForImageClassification"] and report["head_ignored"] == []
    x = loaded.encoder.prepare(_grey(2, 32))
    with torch.no_grad():
        want = model.vit(pixel_values=x).last_hidden_state[:, 0]
        torch.testing.assert_close(loaded.encoder.forward_global(x), want)
        # the classifier reads exactly this feature
        torch.testing.assert_close(model.classifier(want), model(pixel_values=x).logits)


def test_folder_without_preprocessor_config_gets_the_benchmark_default(zoo, tmp_path):
    shutil.copytree(zoo["vit"][0], tmp_path / "vit")
    (tmp_path / "vit" / "preprocessor_config.json").unlink()
    loaded = load_encoder(str(tmp_path / "vit"))
    assert loaded.encoder.contract.mean == (0.5,) * 3 and loaded.encoder.contract.std == (0.5,) * 3
    assert loaded.encoder.contract.input_size == 32
    assert loaded.load_report["contract_origin"].startswith("format default (no preprocessor_config.json")


def test_folder_sha256_is_a_content_hash(zoo, tmp_path):
    folder = zoo["vit"][0]
    loaded = load_encoder(str(folder))
    names = ["config.json", "model.safetensors", "preprocessor_config.json"]
    lines = "".join(f"{n}\0{sha256_file(folder / n)}\n" for n in names)
    assert loaded.sha256 == hashlib.sha256(lines.encode()).hexdigest() != sha256_text(loaded.spec)
    copy = tmp_path / "elsewhere"
    shutil.copytree(folder, copy)
    assert load_encoder(str(copy)).sha256 == loaded.sha256  # same files, other place: same identity
    state = load_file(copy / "model.safetensors")
    state["layernorm.weight"] = state["layernorm.weight"] + 1
    save_file(state, copy / "model.safetensors")
    assert load_encoder(str(copy)).sha256 != loaded.sha256


# ---------------------------------------------------------------------------------------------
# MedCLIP
# ---------------------------------------------------------------------------------------------
def test_medclip_resnet_checkpoint(zoo):
    path, resnet, _ = zoo["medclip_resnet"]
    loaded = load_encoder(str(path))
    report, enc = loaded.load_report, loaded.encoder
    assert loaded.format == "medclip" and loaded.method_hint == "medclip" and enc.arch == "resnet_tiny"
    assert report["format_source"] == "https://github.com/RyanWangZf/MedCLIP"
    assert report["head_ignored"] == ["fc.weight"] and report["missing"] == report["unexpected"] == []
    assert enc.contract.mean == (MEDCLIP_MEAN,) * 3 and enc.contract.std == (MEDCLIP_STD,) * 3
    assert enc.contract.input_size is None and report["contract_origin"].startswith("MedCLIP code")
    n_text = sum(1 for k in torch.load(path, weights_only=True) if k.startswith("text_model."))
    assert report["n_ignored"] == n_text + 1  # + logit_scale
    assert report["text_side"].startswith("BERT text tower (2 layers) under text_model.model.*")
    x = enc.prepare(_grey(2, 48))
    with torch.no_grad():
        torch.testing.assert_close(enc.forward_global(x), _reference_global("medclip_resnet", resnet, x))


def test_medclip_swin_checkpoint(zoo):
    path, swin, _ = zoo["medclip_swin"]
    loaded = load_encoder(str(path))
    report, enc = loaded.load_report, loaded.encoder
    assert loaded.format == "medclip" and enc.arch == "hf_swin_test" and report["variant"].startswith("MedCLIPVision")
    assert report["n_loaded"] == report["n_expected"] == len(swin.state_dict()) and report["unexpected"] == []
    assert len(report["buffers_skipped"]) == 5  # one relative_position_index per block
    n_text = sum(1 for k in torch.load(path, weights_only=True) if k.startswith("text_model."))
    assert report["n_ignored"] == n_text + 2  # + vision_model.projection_head.weight, logit_scale
    assert enc.contract.mean == (MEDCLIP_MEAN,) * 3 and enc.contract.input_size == 64
    x = enc.prepare(_grey(2, 64))
    with torch.no_grad():
        torch.testing.assert_close(enc.forward_global(x), swin(pixel_values=x).pooler_output, rtol=1e-5, atol=1e-5)


def test_registered_swin_tiny_is_the_published_configuration():
    from models.architectures import build_arch

    enc = build_arch("hf_swin_tiny_patch4_window7_224", seed=0)
    assert enc.feature_dim == 768 and enc.pyramid_channels == (96, 192, 384, 768)
    assert enc.config_summary == {
        "image_size": 224,
        "patch_size": 4,
        "embed_dim": 96,
        "depths": [2, 2, 6, 2],
        "num_heads": [3, 6, 12, 24],
        "window_size": 7,
    }
    assert sum(p.numel() for p in enc.parameters()) == 27_519_354  # swin-tiny without its classifier


# ---------------------------------------------------------------------------------------------
# strictness
# ---------------------------------------------------------------------------------------------
DROPPED = {
    "vit": "encoder.layer.1.attention.attention.query.weight",
    "dinov2": "encoder.layer.1.mlp.fc2.weight",
    "swin": "encoder.layers.2.blocks.1.attention.self.relative_position_bias_table",
    "clip_vision": "encoder.layers.1.self_attn.q_proj.weight",
    "clip": "vision_model.encoder.layers.1.mlp.fc1.weight",
    "medclip_resnet": "vision_model.model.layer3.0.conv2.weight",
    "medclip_swin": "vision_model.model.layernorm.weight",
}


@pytest.mark.parametrize("name", list(DROPPED))
def test_a_missing_backbone_tensor_is_refused_by_name(zoo, tmp_path, name):
    source = zoo[name][0]
    key = DROPPED[name]
    if name.startswith("medclip"):
        state = torch.load(source, weights_only=True)
        del state[key]
        spec = tmp_path / "pytorch_model.bin"
        torch.save(state, spec)
    else:
        spec = tmp_path / name
        shutil.copytree(source, spec)
        state = load_file(spec / "model.safetensors")
        del state[key]
        save_file(state, spec / "model.safetensors")
    stripped = key.split("vision_model.model.")[-1].removeprefix("vision_model.")
    with pytest.raises(CheckpointError) as refused:
        load_encoder(str(spec))
    assert "1 missing" in str(refused.value) and stripped in str(refused.value)
    assert "--allow-partial-load" in str(refused.value)
    partial = load_encoder(str(spec), allow_partial=True).load_report
    assert partial["missing"] == [stripped] and partial["n_loaded"] == partial["n_expected"] - 1


def test_an_unexpected_backbone_tensor_is_refused_and_other_folders_are_explained(zoo, tmp_path):
    spec = tmp_path / "vit"
    shutil.copytree(zoo["vit"][0], spec)
    state = load_file(spec / "model.safetensors")
    state["encoder.layer.4.attention.attention.query.weight"] = torch.zeros(32, 32)  # a 5th block
    save_file(state, spec / "model.safetensors")
    with pytest.raises(CheckpointError, match=r"1 unexpected[\s\S]*encoder\.layer\.4\.attention\.attention\.query"):
        load_encoder(str(spec))
    with pytest.raises(ConfigError, match="drop --arch"):
        load_encoder(str(zoo["vit"][0]), arch="resnet50")
    (spec / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="expected model.safetensors or pytorch_model.bin"):
        load_encoder(str(spec))
    (spec / "config.json").write_text(json.dumps({"model_type": "bert", "architectures": ["BertModel"]}))
    with pytest.raises(CheckpointError, match="model_type 'bert'.*supported model types: vit, dinov2, swin"):
        load_encoder(str(spec))


# ---------------------------------------------------------------------------------------------
# end to end through the command line
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["vit", "dinov2", "clip_vision", "clip", *MEDCLIP])  # Swin: the next test
def test_zoo_encoders_score_through_the_cli(demo_root, shared_cache, zoo, tmp_path, name):
    spec = zoo[name][0]
    out = tmp_path / "out"
    extra = ("--tasks", "covidx_cls", "--fractions", "100", "--limit", "24")  # 24 images per split: fast
    args = demo_cli_args(demo_root, shared_cache, out, *extra, encoder=str(spec))
    assert main(args) == 0
    result = read_result(out / "covidx_cls" / "covidx_cls_frac100_seed0.json")
    loaded = load_encoder(str(spec))
    assert 0 <= result.value <= 1 and result.encoder["sha256"] == loaded.sha256
    assert result.encoder["format"] == loaded.format and result.encoder["contract"] == loaded.encoder.contract.to_dict()
    assert result.encoder["load_report"]["contract_origin"] == loaded.load_report["contract_origin"]
    assert result.encoder["load_report"]["text_side"] == loaded.load_report["text_side"]
    assert result.data["n_test"] == 24 and result.flags["limit"] == 24


def test_swin_folder_scores_all_seven_supervised_demo_tasks(demo_root, shared_cache, zoo, tmp_path):
    """Every supervised family on the Swin's 4-level pyramid (strides 4-32). A smoke run (8 images per
    split, one segmentation epoch): the full-length demo units take minutes on 2 CPU cores."""
    out = tmp_path / "out"
    tasks = ",".join(SUPERVISED)
    extra = ("--tasks", tasks, "--fractions", "100", "--limit", "8", "--seg-max-epochs", "1")
    assert main(demo_cli_args(demo_root, shared_cache, out, *extra, encoder=str(zoo["swin"][0]))) == 0
    for task in SUPERVISED:
        result = read_result(out / task / f"{task}_frac100_seed0.json")
        assert (
            0 <= result.value <= 1 and result.encoder["arch"] == "hf_swin" and result.encoder["format"] == "hf_folder"
        )
    for task in ("rsna_det", "objectcxr_det"):  # the neck takes the stage outputs at strides 8, 16, 32
        h = read_result(out / task / f"{task}_frac100_seed0.json").hyperparameters
        assert h["mmengine_config"]["model"]["backbone"]["out_indices"] == [1, 2, 3]
        assert h["pyramid_level_shapes"] == [[32, 12, 12], [64, 6, 6], [128, 3, 3]]
    segmentation = read_result(out / "siim_seg" / "siim_seg_frac100_seed0.json").hyperparameters
    assert segmentation["mmengine_config"]["model"]["decode_head"]["in_channels"] == [16, 32, 64, 128]
