"""ViT encoders on every task, and the ViT-based public checkpoint formats.

Tiny random models with the real key names of each release (OpenAI CLIP / CheXzero, open_clip
timm towers / BiomedCLIP, MRM, REFERS, PTUnifier), built here from small reference modules
written after the official code's module structure; each scores end to end through
``run_benchmark.py`` on the demo suite, and its features equal the reference module's. The
full-size key sets are checked on the ``meta`` device. No downloads.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from benchmark.cli import main
from benchmark.errors import CheckpointError, ConfigError
from benchmark.results import read_result
from models.architectures import build_arch, infer_arch
from models.formats import FORMATS, detect_format
from models.loading import load_encoder
from models.state_loading import required_keys

from .cli_args import demo_cli_args

CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
TINY = dict(size=32, patch=8, width=48, layers=2, heads=3)  # the registered vit_tiny_test / vit_tiny_clip_test
LIMIT = ["--limit", "12"]  # images per split in the CLI runs: the code paths of a full run, at test speed

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def perturb(module: nn.Module, seed: int) -> nn.Module:
    """Every parameter moved off its initial value (LayerNorms included), so a tensor loaded
    into the wrong place changes the features."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.1)
    return module.eval()


def grey(b=2, size=32, seed=0):
    return torch.rand(b, 1, size, size, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------- reference modules
class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class ClipBlock(nn.Module):
    """openai/CLIP clip/model.py ResidualAttentionBlock: ln_1, attn (nn.MultiheadAttention),
    ln_2, mlp (c_fc, QuickGELU, c_proj); pre-norm residuals; sequence-first."""

    def __init__(self, width, heads):
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads)
        self.ln_1 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(
            OrderedDict(
                [("c_fc", nn.Linear(width, 4 * width)), ("gelu", QuickGELU()), ("c_proj", nn.Linear(4 * width, width))]
            )
        )
        self.ln_2 = nn.LayerNorm(width)

    def forward(self, x):
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.ln_2(x))


class ClipTransformer(nn.Module):
    def __init__(self, width, layers, heads):
        super().__init__()
        self.resblocks = nn.Sequential(*[ClipBlock(width, heads) for _ in range(layers)])


class ClipVisual(nn.Module):
    """openai/CLIP clip/model.py VisionTransformer (PTUnifier's copy has no ``proj``)."""

    def __init__(self, size, patch, width, layers, heads, output_dim=16, proj=True):
        super().__init__()
        scale = width**-0.5
        self.conv1 = nn.Conv2d(3, width, kernel_size=patch, stride=patch, bias=False)
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn((size // patch) ** 2 + 1, width))
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = ClipTransformer(width, layers, heads)
        self.ln_post = nn.LayerNorm(width)
        if proj:
            self.proj = nn.Parameter(scale * torch.randn(width, output_dim))

    def cls_feature(self, x):
        """The CLS token after ln_post, before proj."""
        x = self.conv1(x).flatten(2).transpose(1, 2)
        cls = self.class_embedding + torch.zeros(x.shape[0], 1, x.shape[-1])
        x = self.ln_pre(torch.cat([cls, x], dim=1) + self.positional_embedding)
        x = self.transformer.resblocks(x.permute(1, 0, 2)).permute(1, 0, 2)
        return self.ln_post(x[:, 0])


class VPAttention(nn.Module):
    """jeonsworld/ViT-pytorch models/modeling.py Attention: query, key, value, out."""

    def __init__(self, width, heads):
        super().__init__()
        self.heads = heads
        self.query, self.key, self.value, self.out = (nn.Linear(width, width) for _ in range(4))

    def forward(self, x):
        b, n, d = x.shape

        def split(t):
            return t.view(b, n, self.heads, d // self.heads).permute(0, 2, 1, 3)

        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        probs = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d // self.heads), dim=-1)
        return self.out((probs @ v).permute(0, 2, 1, 3).reshape(b, n, d))


class VPMlp(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(width, 4 * width), nn.Linear(4 * width, width)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class VPBlock(nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        self.attention_norm = nn.LayerNorm(width, eps=1e-6)
        self.ffn_norm = nn.LayerNorm(width, eps=1e-6)
        self.ffn = VPMlp(width)
        self.attn = VPAttention(width, heads)

    def forward(self, x):
        x = x + self.attn(self.attention_norm(x))
        return x + self.ffn(self.ffn_norm(x))


class VPEmbeddings(nn.Module):
    def __init__(self, size, patch, width):
        super().__init__()
        self.patch_embeddings = nn.Conv2d(3, width, kernel_size=patch, stride=patch)
        self.position_embeddings = nn.Parameter(torch.randn(1, (size // patch) ** 2 + 1, width) * 0.02)
        self.cls_token = nn.Parameter(torch.randn(1, 1, width) * 0.02)


class VPEncoder(nn.Module):
    def __init__(self, width, layers, heads):
        super().__init__()
        self.layer = nn.ModuleList(VPBlock(width, heads) for _ in range(layers))
        self.encoder_norm = nn.LayerNorm(width, eps=1e-6)


class VPTransformer(nn.Module):
    def __init__(self, size, patch, width, layers, heads):
        super().__init__()
        self.embeddings = VPEmbeddings(size, patch, width)
        self.encoder = VPEncoder(width, layers, heads)


class VPViT(nn.Module):
    """jeonsworld/ViT-pytorch VisionTransformer, as REFERS' fine-tuning code builds it."""

    def __init__(self, size, patch, width, layers, heads, num_classes=14):
        super().__init__()
        self.transformer = VPTransformer(size, patch, width, layers, heads)
        self.head = nn.Linear(width, num_classes)

    def cls_feature(self, x):
        emb = self.transformer.embeddings
        x = emb.patch_embeddings(x).flatten(2).transpose(-1, -2)
        x = torch.cat([emb.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + emb.position_embeddings
        for block in self.transformer.encoder.layer:
            x = block(x)
        return self.transformer.encoder.encoder_norm(x)[:, 0]


class TimmCls(nn.Module):
    """A timm ViT's CLS feature (``global_pool="token"``, the trunk of open_clip's TimmModel with
    ``timm_pool: ""`` and the MAE encoder of MRM)."""

    def __init__(self, size, patch, width, layers, heads):
        super().__init__()
        from timm.models.vision_transformer import VisionTransformer

        self.vit = VisionTransformer(
            img_size=size, patch_size=patch, embed_dim=width, depth=layers, num_heads=heads, num_classes=0
        )

    def cls_feature(self, x):
        return self.vit.forward_head(self.vit.forward_features(x), pre_logits=True)


def named(prefix, module_or_state):
    state = module_or_state if isinstance(module_or_state, dict) else module_or_state.state_dict()
    return {prefix + k: v for k, v in state.items()}


def randoms(shapes: dict) -> dict:
    return {k: torch.randn(s) * 0.02 for k, s in shapes.items()}


# ------------------------------------------------------------------- the releases, tiny
def clip_text(width=32, prefix=""):
    """OpenAI CLIP's text side (one block): what a CheXzero state dict holds beside visual.*."""
    block = ClipBlock(width, 2).state_dict()
    return {
        **randoms({f"{prefix}token_embedding.weight": (100, width), f"{prefix}positional_embedding": (77, width)}),
        **named(f"{prefix}transformer.resblocks.0.", block),
        **randoms({f"{prefix}ln_final.weight": (width,), f"{prefix}ln_final.bias": (width,)}),
        **randoms({f"{prefix}text_projection": (width, 16)}),
        f"{prefix}logit_scale": torch.tensor(4.6052),
    }


def openai_clip_release(seed=1):
    ref = perturb(ClipVisual(**TINY), seed)
    return ref, named("visual.", ref) | clip_text()


def open_clip_release(seed=2):
    ref = perturb(TimmCls(**TINY), seed)
    text = randoms(
        {
            "text.transformer.embeddings.word_embeddings.weight": (100, 32),
            "text.transformer.encoder.layer.0.attention.self.query.weight": (32, 32),
            "text.proj.0.weight": (24, 32),
            "text.proj.2.weight": (16, 24),
        }
    )
    head = randoms({"visual.head.proj.weight": (16, TINY["width"])})
    return ref, named("visual.trunk.", ref.vit) | head | text | {"logit_scale": torch.tensor(4.6052)}


def mae_decoder(width: int, n_tokens: int, patch: int, encoder_width: int = TINY["width"]) -> dict:
    """model_mrm.py MRM's MAE decoder tensors (mask_token, decoder_embed, decoder_pos_embed,
    decoder_blocks.N, decoder_norm, decoder_pred), one block."""
    from timm.models.vision_transformer import Block

    pred = (2 * patch) ** 2 * 3
    return {
        **randoms(
            {
                "mask_token": (1, 1, width),
                "decoder_embed.weight": (width, encoder_width),
                "decoder_embed.bias": (width,),
                "decoder_pos_embed": (1, n_tokens, width),
                "decoder_norm.weight": (width,),
                "decoder_norm.bias": (width,),
                "decoder_pred.weight": (pred, width),
                "decoder_pred.bias": (pred,),
            }
        ),
        **named("decoder_blocks.0.", Block(width, 2, qkv_bias=True)),
    }


MRM_REPORT = {  # bert_encoder (MyBertMaskedLM) and bert_mlp, a few of their tensors
    "bert_encoder.model.bert.embeddings.word_embeddings.weight": (100, 24),
    "bert_encoder.model.bert.encoder.layer.0.attention.self.query.weight": (24, 24),
    "bert_encoder.model.cls.predictions.bias": (100,),
    "bert_mlp.weight": (24, TINY["width"]),
    "bert_mlp.bias": (24,),
}


def mrm_release(seed=3):
    ref = perturb(TimmCls(**TINY), seed)
    decoder = mae_decoder(32, (TINY["size"] // TINY["patch"]) ** 2 + 1, TINY["patch"])
    return ref, {"model": named("", ref.vit) | decoder | randoms(MRM_REPORT), "epoch": 199}


def refers_release(seed=4):
    ref = perturb(VPViT(**TINY), seed)
    return ref, ref.state_dict()  # refers_checkpoint.pth: the fine-tuning model's flat state dict


def ptunifier_release(seed=5):
    ref = perturb(ClipVisual(**TINY, proj=False), seed)
    state = named("vision_encoder.visual.", ref) | randoms(
        {
            "vision_encoder.token_embedding.weight": (100, 32),
            "vision_encoder.positional_embedding": (77, 32),
            "vision_encoder.ln_final.weight": (32,),
            "vision_encoder.ln_final.bias": (32,),
            "language_encoder.embeddings.word_embeddings.weight": (100, 32),
            "language_encoder.encoder.layer.0.attention.self.query.weight": (32, 32),
            "multi_modal_vision_proj.weight": (32, TINY["width"]),
            "multi_modal_language_proj.weight": (32, 32),
            "multi_modal_vision_layers.0.attention.self.query.weight": (32, 32),
            "modality_type_embeddings.weight": (2, 32),
            "pseudo_vision_token_pool": (64, TINY["width"]),
        }
    )
    config = {"vit": "ViT-B/16", "image_size": TINY["size"], "patch_size": TINY["patch"], "tokenizer": "roberta"}
    return ref, {
        "state_dict": state,
        "epoch": 9,
        "global_step": 1000,
        "pytorch-lightning_version": "1.5.5",
        "hyper_parameters": {"config": config},
    }


# fmt, release builder, method hint, architecture, mean, std, text side named?, ignored tensors
RELEASES = {
    "openai_clip": (openai_clip_release, "clip", "vit_tiny_clip_test", CLIP_MEAN, CLIP_STD, True),
    "open_clip_timm": (open_clip_release, "open_clip", "vit_tiny_test", CLIP_MEAN, CLIP_STD, True),
    "mrm": (mrm_release, "mrm", "vit_tiny_test", [0.4978] * 3, [0.2449] * 3, True),
    "refers": (refers_release, "refers", "vit_tiny_test", IMAGENET_MEAN, IMAGENET_STD, False),
    "ptunifier": (ptunifier_release, "ptunifier", "vit_tiny_clip_test", CLIP_MEAN, CLIP_STD, True),
}
SOURCES = {
    "openai_clip": "https://github.com/openai/CLIP",
    "open_clip_timm": "https://github.com/mlfoundations/open_clip",
    "mrm": "https://github.com/RL4M/MRM-pytorch",
    "refers": "https://github.com/funnyzhou/REFERS",
    "ptunifier": "https://github.com/zhjohnchan/PTUnifier",
}
# tensors of each tiny file that are not the backbone (left out and counted)
IGNORED = {
    # visual.proj; the text side: token and position embeddings, one 12-tensor block, ln_final, projection, scale
    "openai_clip": 1 + 2 + 12 + 2 + 1 + 1,
    "open_clip_timm": 1 + 4 + 1,  # visual.head.proj; four text.* tensors; logit_scale
    "mrm": 8 + 12 + 5,  # MAE decoder tensors, its one 12-tensor block, the report decoder's tensors
    "refers": 2,  # head.weight, head.bias
    "ptunifier": 11,  # CLIP text embeddings left in vision_encoder, language encoder, fusion, token pool
}


@pytest.fixture(scope="module")
def releases(tmp_path_factory):
    folder = tmp_path_factory.mktemp("zoo")
    out = {}
    for fmt, (build, *_rest) in RELEASES.items():
        ref, obj = build()
        path = folder / f"{fmt}.pt"
        torch.save(obj, path)
        out[fmt] = (ref, path)
    return out


@pytest.fixture(scope="module")
def zoo_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("zoo-cache")


# ------------------------------------------------------------------- 1. ViT on dense inputs
def test_vit_pyramid_resizes_position_embeddings_like_mmseg_for_other_input_sizes():
    from mmseg.models.backbones.vit import VisionTransformer as MMSegViT

    enc = build_arch("vit_tiny_test", seed=0).eval()
    x = enc.prepare(grey(size=64)[:, :, :, :48])  # 8 x 6 patches; trained on 4 x 4
    with torch.no_grad():
        pyramid = enc.forward_pyramid(x)
        resized = MMSegViT.resize_pos_embed(enc.pos_embed, (8, 6), (4, 4), "bicubic")  # the reference rule
        tokens = enc.patch_embed.proj(x).flatten(2).transpose(1, 2)
        tokens = torch.cat([enc.cls_token.expand(2, -1, -1), tokens], 1) + resized
        tokens = enc.blocks(tokens)  # depth 2: the last pyramid level is the last block's map
    assert [tuple(t.shape) for t in pyramid] == [(2, 48, 64 // s, 48 // s) for s in (4, 8, 16, 32)]
    want = F.interpolate(tokens[:, 1:].transpose(1, 2).reshape(2, 48, 8, 6), size=(2, 1), mode="bilinear")
    torch.testing.assert_close(pyramid[3], want, rtol=1e-5, atol=1e-6)
    assert resized[:, :1].equal(enc.pos_embed[:, :1])  # the class token's embedding is kept
    with pytest.raises(ConfigError, match="multiples of its patch size 8"):
        enc.forward_pyramid(enc.prepare(grey(size=60)))
    with pytest.raises(ConfigError, match="32x32"):  # classification keeps the trained size
        enc.forward_global(enc.prepare(grey(size=64)))


def test_detection_takes_the_levels_at_strides_8_16_32_whatever_the_level_count():
    from benchmark.families.detection import level_indices
    from benchmark.openmmlab.detection_config import detection_config
    from benchmark.registry import all_tasks

    recipe = all_tasks()["rsna_det"].recipe
    assert recipe.out_indices == (2, 3, 4) and recipe.level_strides == (8, 16, 32)
    resnet, vit = build_arch("resnet_tiny", seed=0), build_arch("vit_tiny_test", seed=0)
    assert level_indices(resnet, recipe) == (2, 3, 4) and level_indices(vit, recipe) == (1, 2, 3)
    cfg = detection_config(
        recipe,
        fraction=100,
        seed=0,
        encoder_spec="random:vit_tiny_test",
        out_indices=(1, 2, 3),
        in_channels=(48, 48, 48),
        strides=(8, 16, 32),
        input_size=96,
    )
    assert tuple(cfg.model.backbone.out_indices) == (1, 2, 3)
    assert list(cfg.model.bbox_head.featmap_strides) == [32, 16, 8]
    vit.pyramid_strides = (4, 16, 32, 64)  # an encoder without a stride-8 level is refused by name
    with pytest.raises(ConfigError, match=r"strides \[8, 16, 32\].*none at \[8\]"):
        level_indices(vit, recipe)


def test_unet_decoder_runs_on_a_four_level_pyramid():
    from benchmark.openmmlab.segmentation_config import build_segmentor, segmentation_config
    from benchmark.registry import all_tasks

    enc = build_arch("vit_tiny_test", seed=0).freeze()
    config = segmentation_config(
        all_tasks()["siim_seg"], "random:vit_tiny_test", enc.pyramid_channels, input_size=64, seed=0
    )
    assert config["model"]["backbone"]["out_indices"] == (0, 1, 2, 3)
    model = build_segmentor(config, loaded=enc).eval()
    with torch.no_grad():
        levels = model.backbone(grey(size=64).expand(-1, 3, -1, -1))
        logits = model.decode_head(list(levels))
    assert [lv.shape[-1] for lv in levels] == [16, 8, 4, 2]  # strides 4..32
    assert logits.shape == (2, 1, 64, 64)  # the decoder ends at stride 1, as on a ResNet's 5 levels


# ------------------------------------------------------------------- 2. a ViT on all 7 supervised tasks
def test_a_vit_scores_all_seven_supervised_demo_tasks(demo_root, zoo_cache, tmp_path):
    tasks = ["chexpert_cls", "rsna_cls", "covidx_cls", "siim_seg", "rsna_seg", "rsna_det", "objectcxr_det"]
    out = tmp_path / "vit"
    args = ["--tasks", ",".join(tasks), "--fractions", "100", "--seeds", "0", "--seg-max-epochs", "1", *LIMIT]
    assert main(demo_cli_args(demo_root, zoo_cache, out, *args, encoder="random:vit_tiny_test")) == 0
    for task in tasks:
        result = read_result(out / task / f"{task}_frac100_seed0.json")
        assert result.encoder["arch"] == "vit_tiny_test" and math.isfinite(result.value) and 0 <= result.value <= 1
        if task.endswith("_det"):
            model = result.hyperparameters["mmengine_config"]["model"]
            assert model["backbone"]["out_indices"] == [1, 2, 3] and model["neck"]["in_channels"] == [48, 48, 48]
            assert result.hyperparameters["pyramid_level_shapes"] == [[48, 12, 12], [48, 6, 6], [48, 3, 3]]  # 96 px
        if task.endswith("_seg"):
            head = result.hyperparameters["mmengine_config"]["model"]["decode_head"]
            assert head["in_channels"] == [48, 48, 48, 48]


# ------------------------------------------------------------------- 3. the formats, end to end
@pytest.mark.parametrize("fmt", list(RELEASES))
def test_release_scores_through_the_cli_with_its_format_contract_and_weights(
    demo_root, zoo_cache, releases, tmp_path, fmt
):
    _, method, arch, mean, std, has_text = RELEASES[fmt]
    ref, path = releases[fmt]
    out = tmp_path / "out"
    args = ["--tasks", "rsna_cls", "--fractions", "100", "--seeds", "0", *LIMIT]
    assert main(demo_cli_args(demo_root, zoo_cache, out, *args, encoder=str(path))) == 0
    result = read_result(out / "rsna_cls" / "rsna_cls_frac100_seed0.json")
    enc, report = result.encoder, result.encoder["load_report"]
    assert enc["format"] == fmt and enc["method_hint"] == method and enc["arch"] == arch
    assert enc["contract"] == {"mean": mean, "std": std, "channels": 3, "input_size": 32}
    assert report["contract_origin"].startswith("format default (") and report["format_source"] == SOURCES[fmt]
    assert report["missing"] == [] and report["unexpected"] == [] and report["n_loaded"] == report["n_expected"]
    assert report["n_ignored"] == IGNORED[fmt] and (report["text_side"] is not None) == has_text
    assert 0 <= result.value <= 1
    # the weights scored are the checkpoint's: the loaded encoder's features are the reference module's
    loaded = load_encoder(str(path))
    assert loaded.sha256 == enc["sha256"]
    x = loaded.encoder.prepare(grey())
    with torch.no_grad():
        torch.testing.assert_close(loaded.encoder.forward_global(x), ref.cls_feature(x), rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------- 4. full-size key layouts on meta
def full_size(fmt):
    """(checkpoint object with the release's full-size key layout on the meta device, architecture)."""
    with torch.device("meta"):
        if fmt == "openai_clip":  # CheXzero: ViT-B/32 at 224
            return {"state_dict": named("visual.", ClipVisual(224, 32, 768, 12, 12, 512)) | clip_text(512)}, (
                "vit_base_patch32_clip_quickgelu_224"
            )
        if fmt == "open_clip_timm":  # BiomedCLIP: timm vit_base_patch16_224 trunk
            return named("visual.trunk.", TimmCls(224, 16, 768, 12, 12).vit), "vit_base_patch16_224"
        if fmt == "mrm":  # model_mrm.mrm(): ViT-B/16 encoder, 768-d decoder
            encoder = named("", TimmCls(224, 16, 768, 12, 12).vit)
            decoder = mae_decoder(768, 197, 16, encoder_width=768)
            return {"model": encoder | decoder | randoms(MRM_REPORT)}, "vit_base_patch16_224"
        if fmt == "refers":
            return VPViT(224, 16, 768, 12, 12).state_dict(), "vit_base_patch16_224"
        if fmt == "ptunifier":  # clip16 at image_size 288, layers - 1 = 11 blocks
            visual = ClipVisual(288, 16, 768, 11, 12, proj=False)
            return {"state_dict": named("vision_encoder.visual.", visual) | randoms({"language_encoder.x": (1,)})}, (
                "vit_base_patch16_clip_quickgelu_288_depth11"
            )
    raise AssertionError(fmt)


@pytest.mark.parametrize("fmt", list(RELEASES))
def test_full_size_layout_maps_onto_every_backbone_tensor(fmt):
    obj, arch = full_size(fmt)
    assert detect_format(obj) is FORMATS[fmt]
    backbone, info = FORMATS[fmt].extract(obj)
    assert infer_arch(backbone) == arch
    with torch.device("meta"):
        enc = build_arch(arch)
    own = enc.state_dict()
    assert sorted(backbone) == sorted(required_keys(enc))
    assert all(tuple(backbone[k].shape) == tuple(own[k].shape) for k in own)
    assert info["contract"].input_size == enc.config.img_size


# ------------------------------------------------------------------- 5. refusals
def test_clip_resnet_towers_and_incomplete_layouts_are_refused_clearly(tmp_path):
    resnet_clip = {"visual.conv1.weight": torch.zeros(32, 3, 3, 3), "visual.layer1.0.conv1.weight": torch.zeros(1)}
    torch.save(resnet_clip | {"visual.attnpool.c_proj.weight": torch.zeros(1)}, tmp_path / "rn.pt")
    with pytest.raises(CheckpointError, match="ResNet image tower.*module:function"):
        load_encoder(str(tmp_path / "rn.pt"))

    _, clip = openai_clip_release()
    del clip["visual.transformer.resblocks.1.attn.in_proj_weight"]
    torch.save(clip, tmp_path / "clip_cut.pt")
    with pytest.raises(
        CheckpointError, match=r"1 missing[\s\S]*blocks\.1\.attn\.qkv\.weight[\s\S]*--allow-partial-load"
    ):
        load_encoder(str(tmp_path / "clip_cut.pt"))

    _, refers = refers_release()
    del refers["transformer.encoder.layer.0.attn.key.bias"]  # query and value alone cannot make qkv
    torch.save(refers, tmp_path / "refers_cut.pt")
    with pytest.raises(CheckpointError, match=r"blocks\.0\.attn\.qkv\.bias[\s\S]*attn\.query\.bias"):
        load_encoder(str(tmp_path / "refers_cut.pt"))

    _, open_clip = open_clip_release()
    convnext = {k: v for k, v in open_clip.items() if not k.startswith("visual.trunk.")}
    torch.save(convnext | {"visual.trunk.stem.0.weight": torch.zeros(8, 3, 4, 4)}, tmp_path / "convnext.pt")
    with pytest.raises(CheckpointError, match="not a ViT"):
        load_encoder(str(tmp_path / "convnext.pt"))


def test_mae_checkpoint_without_report_decoder_and_ptunifier_swin_towers(tmp_path):
    ref, obj = mrm_release()
    obj["model"] = {k: v for k, v in obj["model"].items() if not k.startswith(("bert_encoder.", "bert_mlp."))}
    torch.save(obj, tmp_path / "mae.pth")
    loaded = load_encoder(str(tmp_path / "mae.pth"))  # an MAE pretraining checkpoint with its decoder
    assert loaded.format == "mrm" and loaded.method_hint == "mae" and loaded.load_report["text_side"] is None
    assert list(loaded.encoder.contract.mean) == IMAGENET_MEAN and list(loaded.encoder.contract.std) == IMAGENET_STD
    x = loaded.encoder.prepare(grey())
    with torch.no_grad():
        torch.testing.assert_close(loaded.encoder.forward_global(x), ref.cls_feature(x), rtol=1e-5, atol=1e-5)

    swin = {  # PTUnifier's swin32_* configs: a Swin image encoder
        "vision_encoder.layers.0.blocks.0.norm1.weight": torch.ones(4),
        "language_encoder.embeddings.word_embeddings.weight": torch.zeros(10, 4),
    }
    torch.save({"state_dict": swin, "epoch": 1}, tmp_path / "ptunifier_swin.ckpt")
    with pytest.raises(CheckpointError, match="not the CLIP ViT.*vision_encoder.layers.0"):
        load_encoder(str(tmp_path / "ptunifier_swin.ckpt"))
