"""TINY random models for the SynCXR recipe's tests, smoke runs and the demo leaderboard, written
to folders that the recipe loads exactly like real ones (``AutoTokenizer`` /
``AutoModelForCausalLM``, ``AutoProcessor`` / ``AutoModelForImageTextToText``); nothing is
downloaded.

- :func:`write_tiny_causal_lm`: a random ``LlamaForCausalLM`` (2 layers, 32 wide) with a
  byte-level BPE tokenizer trained (``tokenizers``) on the demo reports and the recipe's prompts,
  and a small chat template (so the chat-template path runs). Its text is gibberish: every report
  ends in the recipe's fallback rule.
- :func:`write_tiny_image_text_model`: a random ``LlavaForConditionalGeneration`` (a 2-layer CLIP
  vision tower on 32 x 32 inputs, a 2-layer Llama) with a ``LlavaProcessor``, a byte-level BPE
  tokenizer in which every spelling of "yes" and "no" is one token, and a chat template. A random
  model answers every image alike, so its "yes" and "no" output rows are set apart along the
  direction in which its last hidden state varies most across calibration images, shifted so
  that p(yes) has median 0.5 on them: p(yes) then varies from image to image around 0.5 on
  images like the calibration ones, and the curation rule both keeps and discards images.
"""

from __future__ import annotations

from pathlib import Path

from benchmark.progress import library_bars_off

LLM_CHAT_TEMPLATE = (
    "{% for message in messages %}<|start|>{{ message['role'] }}\n{{ message['content'] }}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|start|>assistant\n{% endif %}"
)
MLLM_CHAT_TEMPLATE = (
    "{% for message in messages %}<|start|>{{ message['role'] }}\n"
    "{% for part in message['content'] %}{% if part['type'] == 'image' %}<image>\n{% else %}{{ part['text'] }}"
    "{% endif %}{% endfor %}<|end|>\n{% endfor %}{% if add_generation_prompt %}<|start|>assistant\n{% endif %}"
)


def _bpe_tokenizer(texts: list[str], vocab_size: int, specials: list[str]):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer)
    return tokenizer


def _llama_config(vocab_size: int, tokenizer, hidden: int = 32, layers: int = 2, positions: int = 2048):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=positions,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


def write_tiny_causal_lm(data_root: str | Path, directory: str | Path, *, seed: int = 0, vocab_size: int = 800) -> Path:
    """A tiny random causal LM + tokenizer (module docstring) in ``directory``; returns it."""
    import torch
    from transformers import LlamaForCausalLM, PreTrainedTokenizerFast

    from recipes.mimic import load_pairs

    from .reports import FINDINGS_PROMPT, IMPRESSION_PROMPT, SYSTEM_PROMPT, TEMPLATES

    directory = Path(directory)
    frame = load_pairs(data_root, min_tokens=0)
    texts = (frame.findings + " " + frame.impression).tolist()
    texts += [SYSTEM_PROMPT, FINDINGS_PROMPT, IMPRESSION_PROMPT, *TEMPLATES.values()] * 5
    specials = ["<pad>", "<|begin|>", "<|end_of_text|>", "<|start|>", "<|end|>"]
    core = _bpe_tokenizer(texts, vocab_size, specials)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, bos_token="<|begin|>", eos_token="<|end_of_text|>", pad_token="<pad>"
    )
    tokenizer.chat_template = LLM_CHAT_TEMPLATE
    tokenizer.save_pretrained(directory)
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        with library_bars_off():  # no "Writing model shards" bar in the caller's output
            LlamaForCausalLM(_llama_config(len(tokenizer), tokenizer)).save_pretrained(directory)
    finally:
        torch.random.set_rng_state(state)
    return directory


def calibration_images(count: int = 48, size: int = 32, seed: int = 0) -> list:
    """Grey images of varied brightness, contrast and texture (PIL, RGB)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    images = []
    for _ in range(count):
        base = rng.uniform(0, 255)
        noise = rng.normal(0, rng.uniform(0, 80), (size, size))
        ramp = np.linspace(0, rng.uniform(-120, 120), size)[None, :]
        pixels = np.clip(base + noise + ramp, 0, 255).astype(np.uint8)
        images.append(Image.fromarray(pixels, "L").convert("RGB"))
    return images


def tiny_sd_images(model_dir: str | Path, count: int = 16, size: int = 32, steps: int = 2) -> list:
    """Images of a tiny Stable Diffusion pipeline folder (``recipes.synthesis.tiny``), to calibrate
    :func:`write_tiny_image_text_model` on the kind of image it will judge (PIL, RGB)."""
    import torch
    from PIL import Image

    from recipes.synthesis.generate import load_pipeline, synthesize
    from recipes.synthesis.tiny import FIXTURE_TEXT

    prompts = [p.strip() for p in FIXTURE_TEXT.split(".") if p.strip()]
    pipe = load_pipeline(Path(model_dir), torch.float32, torch.device("cpu"))
    prompts = [prompts[k % len(prompts)] for k in range(count)]
    grey = synthesize(pipe, prompts, list(range(count)), height=size, width=size, steps=steps, guidance=4.0)
    return [Image.fromarray(g, "L").convert("RGB") for g in grey]


def write_tiny_image_text_model(
    directory: str | Path, *, seed: int = 0, calibration: list | None = None, spread: float = 3.0
) -> Path:
    """A tiny random LLaVA with processor (module docstring) in ``directory``; returns it.
    ``calibration``: PIL images like those it will judge (default :func:`calibration_images`; the
    tests pass :func:`tiny_sd_images`), on which its p(yes) has median 0.5 and a yes-minus-no
    logit of standard deviation ``spread``."""
    import torch
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
        PreTrainedTokenizerFast,
    )

    from .curation import NO_WORDS, QUESTION, YES_WORDS

    directory = Path(directory)
    words = list(YES_WORDS + NO_WORDS)
    texts = [QUESTION, *words, " ".join(words)] * 20
    core = _bpe_tokenizer(texts, 400, ["<pad>", "<|begin|>", "<|end_of_text|>", "<|start|>", "<|end|>", "<image>"])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token="<|begin|>",
        eos_token="<|end_of_text|>",
        pad_token="<pad>",
        extra_special_tokens={"image_token": "<image>"},
    )
    for word in words:
        if len(tokenizer.encode(word, add_special_tokens=False)) != 1:
            raise RuntimeError(f"the tiny tokenizer splits {word!r}; raise its vocabulary size")
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": 32},
        crop_size={"height": 32, "width": 32},
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
    )
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=8,
        vision_feature_select_strategy="default",
        chat_template=MLLM_CHAT_TEMPLATE,
        num_additional_image_tokens=1,
    )
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        vision = CLIPVisionConfig(
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=32,
            patch_size=8,
            projection_dim=16,
        )
        config = LlavaConfig(
            vision_config=vision,
            text_config=_llama_config(len(tokenizer), tokenizer, positions=512),
            image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
            vision_feature_select_strategy="default",
            vision_feature_layer=-1,
        )
        model = LlavaForConditionalGeneration(config).eval()
        # set the yes / no rows apart (module docstring)
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": QUESTION}]}]
        prompt = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        images = list(calibration) if calibration is not None else calibration_images()
        inputs = processor(images=images, text=[prompt] * len(images), return_tensors="pt", padding=True)
        captured = []
        hook = model.lm_head.register_forward_hook(lambda module, args, output: captured.append(args[0][:, -1, :]))
        with torch.no_grad():
            model(**inputs)
        hook.remove()
        hidden = captured[0].double()
        mean = hidden.mean(dim=0)
        centred = hidden - mean
        direction = torch.linalg.svd(centred, full_matrices=False).Vh[0]
        direction = direction * spread / (centred @ direction).std()
        along = hidden @ mean / (mean @ mean)  # about 1 for every image
        direction = direction - (hidden @ direction).median() / along.median() * mean / (mean @ mean)
        yes = [tokenizer.convert_tokens_to_ids(tokenizer.tokenize(w)[0]) for w in YES_WORDS]
        no = [tokenizer.convert_tokens_to_ids(tokenizer.tokenize(w)[0]) for w in NO_WORDS]
        with torch.no_grad():
            weight = model.lm_head.weight
            base = weight[no[0]].clone().double()
            for token in yes:
                weight[token] = (base + direction / 2).to(weight.dtype)
            for token in no:
                weight[token] = (base - direction / 2).to(weight.dtype)
        with library_bars_off():
            model.save_pretrained(directory)
    finally:
        torch.random.set_rng_state(state)
    processor.save_pretrained(directory)
    return directory
