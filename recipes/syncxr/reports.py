"""Step 3, ``reports``: a local causal LM writes FINDINGS, then IMPRESSION, for each entity set;
both are checked for the requested entities and regenerated a bounded number of times.

Model: any local ``transformers`` causal LM folder (``AutoModelForCausalLM`` +
``AutoTokenizer``, ``local_files_only=True``); its chat template is used when the tokenizer has
one (system + user message, generation prompt added), otherwise the plain prompt ends with
``FINDINGS:`` / ``IMPRESSION:``. Prompts: :data:`SYSTEM_PROMPT`, :data:`FINDINGS_PROMPT`,
:data:`IMPRESSION_PROMPT` (our wording; the study's are not published). Sampling (our choice):
temperature 0.7, top-p 0.9, at most 256 new tokens for FINDINGS and 128 for IMPRESSION.

The entity check (the lexicon extractor run on the generated section, :func:`check_section`):
- FINDINGS must mention every requested entity in its requested category (a Non-Abnormality must
  be mentioned negated, ...);
- IMPRESSION must mention every requested Abnormality and Disease;
- neither may state a requested entity with the opposite polarity (e.g. an effusion asked to be
  absent described as present), and each must hold at least 3 caption words (MGCA's tokens).
A failing section is regenerated, at most ``max_attempts`` times in all (default 3). Then the
FALLBACK rule (so the pipeline completes with any model): among the attempts without a
contradiction, the one missing the fewest entities (the earliest on ties) is kept and one
template sentence per missing entity is appended (:data:`TEMPLATES`; fallback ``appended``); if
every attempt contradicts the request, the section is composed from the templates alone
(``composed``). "No acute cardiopulmonary process." completes a section that would have fewer
than 3 words. Every record keeps its entities, its attempts (with what each failed on), its
fallback and the entities found in the final text; the model's name and content hash are in the
step's settings and manifest.

Batching and determinism: sets are cut into global batches of ``--batch-size``; for each batch,
section and attempt, the sections still failing are generated together in one ``generate`` call
seeded with a hash of (seed, batch, section, attempt), so with the same batch size, model,
software and device every report is identical whatever the sharding or resumption.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from benchmark.atomic import atomic_write_text
from benchmark.errors import BenchmarkError, ConfigError
from recipes.mimic.pair_set import make_caption

from .lexicon import CATEGORIES, NEGATED, load_lexicon
from .sampling import folder as samples_folder
from .sampling import read_samples
from .steps import (
    BatchStore,
    Timer,
    batch_count,
    file_sha256,
    folder_lock,
    log,
    model_record,
    progress_bar,
    provenance,
    read_manifest,
    start_batched_step,
    write_manifest,
)

STEP = "reports"
TABLE = "reports.jsonl"
SECTIONS = ("findings", "impression")
MIN_WORDS = 3
POSITIVE = tuple(NEGATED)  # abnormality, disease
OPPOSITE = {**NEGATED, **{v: k for k, v in NEGATED.items()}}
NORMAL_SENTENCE = "No acute cardiopulmonary process."
SYSTEM_PROMPT = (
    "You are an experienced radiologist. You write concise, factual chest X-ray reports in the style of MIMIC-CXR."
)
FINDINGS_PROMPT = (
    "Write the FINDINGS section of a chest X-ray report.\n"
    "Use these exact terms:\n"
    "- abnormalities that are present: {abnormality}\n"
    "- abnormalities that are absent (state that they are not seen): {non_abnormality}\n"
    "- diseases that are present: {disease}\n"
    "- diseases that are ruled out (state that there is no evidence of them): {non_disease}\n"
    "- anatomy to describe: {anatomy}\n"
    "Do not mention any other abnormality or disease. Write only the findings, in full sentences, without a header."
)
IMPRESSION_PROMPT = (
    "Summarise these chest X-ray FINDINGS into the IMPRESSION section of the report.\n"
    "FINDINGS: {findings}\n"
    "{requirement}\n"
    "Do not contradict the findings. Write only the impression, in one to three sentences, without a header."
)
IMPRESSION_REQUIREMENT = "The impression must name, with these exact terms: {positives}."
IMPRESSION_NORMAL = "The findings show no abnormality or disease: say so."
TEMPLATES = {
    "abnormality": "There is {entity}.",
    "non-abnormality": "There is no {entity}.",
    "disease": "The findings are consistent with {entity}.",
    "non-disease": "There is no evidence of {entity}.",
    "anatomy": "Evaluation of the {entity}.",
}
DEFAULT_SAMPLING = {"temperature": 0.7, "top_p": 0.9, "max_new_tokens": {"findings": 256, "impression": 128}}


# ------------------------------------------------------------------------------ prompts
@dataclass(frozen=True)
class Request:
    """One section to write: what a generator needs (the fake generators of the tests read
    ``entities``; the language model reads ``messages``)."""

    section: str
    entities: dict
    findings: str | None
    messages: tuple


def _listing(names: list[str]) -> str:
    return ", ".join(names) if names else "none"


def required(section: str, entities: dict[str, list[str]]) -> list[tuple[str, str]]:
    """The (entity, category) pairs a section must mention."""
    categories = CATEGORIES if section == "findings" else POSITIVE
    return [(name, c) for c in categories for name in entities.get(c, [])]


def make_request(section: str, entities: dict[str, list[str]], findings: str | None = None) -> Request:
    if section == "findings":
        user = FINDINGS_PROMPT.format(**{c.replace("-", "_"): _listing(entities.get(c, [])) for c in CATEGORIES})
    else:
        positives = [name for name, _ in required("impression", entities)]
        requirement = IMPRESSION_REQUIREMENT.format(positives=_listing(positives)) if positives else IMPRESSION_NORMAL
        user = IMPRESSION_PROMPT.format(findings=findings or "", requirement=requirement)
    messages = ({"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user})
    return Request(section, entities, findings, messages)


# ------------------------------------------------------------------------------ checks
@dataclass
class Check:
    missing: list[tuple[str, str]] = field(default_factory=list)
    contradicted: list[tuple[str, str]] = field(default_factory=list)
    short: bool = False

    @property
    def ok(self) -> bool:
        return not self.missing and not self.contradicted and not self.short

    def record(self) -> dict:
        return {"missing": [list(m) for m in self.missing], "contradicted": [list(c) for c in self.contradicted]} | (
            {"short": True} if self.short else {}
        )


def caption_words(text: str) -> int:
    return make_caption(text, None)[1]


def check_section(text: str, section: str, entities: dict[str, list[str]], lexicon) -> Check:
    found = lexicon.entity_set(text)
    requested = [(name, c) for c in CATEGORIES for name in entities.get(c, [])]
    return Check(
        missing=[pair for pair in required(section, entities) if pair not in found],
        contradicted=[(name, c) for name, c in requested if c in OPPOSITE and (name, OPPOSITE[c]) in found],
        short=caption_words(text) < MIN_WORDS,
    )


def template_sentences(pairs: list[tuple[str, str]]) -> list[str]:
    return [TEMPLATES[c].format(entity=name) for name, c in pairs]


def join_sentences(text: str, sentences: list[str]) -> str:
    text = text.strip()
    if text and sentences and not text.endswith((".", "!", "?")):
        text += "."
    return " ".join([t for t in [text, *sentences] if t])


def fallback(attempts: list[tuple[str, Check]], section: str, entities: dict[str, list[str]], lexicon) -> dict:
    """The documented fallback (module docstring) after the last failed attempt."""
    usable = [(k, text, check) for k, (text, check) in enumerate(attempts) if not check.contradicted]
    if usable:
        _, text, check = min(usable, key=lambda item: (len(item[2].missing), item[0]))
        appended = list(check.missing)
        text, kind = join_sentences(text, template_sentences(appended)), "appended"
    else:
        appended = required(section, entities)
        text, kind = join_sentences("", template_sentences(appended)), "composed"
    if caption_words(text) < MIN_WORDS:
        text = join_sentences(text, [NORMAL_SENTENCE])
    final = check_section(text, section, entities, lexicon)
    if not final.ok:
        raise BenchmarkError(
            f"the {section} fallback text {text!r} fails its own entity check ({final.record()}): the lexicon's "
            "template sentences must be found by its extractor (recipes/syncxr/lexicon)"
        )
    return {"text": text, "fallback": kind, "appended": [list(a) for a in appended]}


# ------------------------------------------------------------------------------ generators
class ReportGenerator(Protocol):
    """What writes the sections: ``describe()`` (recorded in the settings) and
    ``generate(requests, seed)`` -> one text per request (all of one section)."""

    def describe(self) -> dict: ...

    def generate(self, requests: list[Request], seed: int) -> list[str]: ...


CONTROL = re.compile(r"[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\ufffd]")
HEADER = re.compile(r"^\s*(findings|impression)\s*:\s*", re.IGNORECASE)
NEXT_HEADER = re.compile(r"\b(FINDINGS|IMPRESSION|Findings|Impression)\s*:")


def clean_output(text: str) -> str:
    """Drop control and replacement characters, a leading section header and anything from the
    next section header on; collapse whitespace."""
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Cs")
    text = CONTROL.sub(" ", text)
    text = HEADER.sub("", text)
    cut = NEXT_HEADER.search(text)
    if cut:
        text = text[: cut.start()]
    return re.sub(r"\s+", " ", text).strip()


def resolve_device(device: str, dtype: str):
    import torch

    from recipes.synthesis.generate import launcher_rank

    _, _, local = launcher_rank()
    if device == "auto":
        device = f"cuda:{local or 0}" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {device}: CUDA is not available here; use --device cpu")
    names = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
    if dtype == "auto":
        dtype = "bf16" if dev.type == "cuda" else "fp32"
    if dtype not in names:
        raise ConfigError(f"--dtype must be auto, fp32, bf16 or fp16, got {dtype!r}")
    return dev, dtype, names[dtype]


def quiet_transformers() -> None:
    from transformers.utils import logging as tlogging

    tlogging.set_verbosity_error()
    tlogging.disable_progress_bar()


class CausalLMGenerator:
    """A local ``transformers`` causal LM folder (see the module docstring)."""

    def __init__(
        self,
        model_dir: str | Path,
        *,
        device: str = "auto",
        dtype: str = "auto",
        temperature: float = DEFAULT_SAMPLING["temperature"],
        top_p: float = DEFAULT_SAMPLING["top_p"],
        max_new_tokens: dict | None = None,
    ):
        model_dir = Path(model_dir)
        if not (model_dir / "config.json").is_file():
            raise ConfigError(
                f"--llm {model_dir}: not a transformers model folder (no config.json). Pass a local causal LM folder "
                "(e.g. a Llama 3.1 Instruct snapshot); nothing is downloaded."
            )
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        quiet_transformers()
        self.device, self.dtype_name, torch_dtype = resolve_device(device, dtype)
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = AutoModelForCausalLM.from_pretrained(model_dir, local_files_only=True, dtype=torch_dtype)
        self.model = self.model.to(self.device).eval()
        self.chat = bool(getattr(self.tokenizer, "chat_template", None))
        self.temperature, self.top_p = float(temperature), float(top_p)
        self.max_new_tokens = {**DEFAULT_SAMPLING["max_new_tokens"], **(max_new_tokens or {})}
        self.record = model_record(model_dir)
        self._torch = torch

    def describe(self) -> dict:
        template = getattr(self.tokenizer, "chat_template", None) or ""
        return {
            "kind": "transformers-causal-lm",
            "model": self.record,
            "architecture": type(self.model).__name__,
            "chat_template": bool(template),
            "chat_template_sha256": hashlib.sha256(template.encode()).hexdigest() if template else None,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "do_sample": self.temperature > 0,
            "max_new_tokens": self.max_new_tokens,
            "dtype": self.dtype_name,
        }

    def render(self, request: Request) -> str:
        messages = [dict(m) for m in request.messages]
        if self.chat:
            try:
                return self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
            except Exception:  # templates without a system role (e.g. Gemma): fold it into the user turn
                merged = [{"role": "user", "content": messages[0]["content"] + "\n\n" + messages[1]["content"]}]
                return self.tokenizer.apply_chat_template(merged, add_generation_prompt=True, tokenize=False)
        return f"{messages[0]['content']}\n\n{messages[1]['content']}\n\n{request.section.upper()}:"

    def generate(self, requests: list[Request], seed: int) -> list[str]:
        torch = self._torch
        section = requests[0].section
        texts = [self.render(r) for r in requests]
        enc = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=not self.chat)
        enc = {k: v.to(self.device) for k, v in enc.items()}
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), torch.inference_mode():
            torch.manual_seed(int(seed))
            out = self.model.generate(
                **enc,
                do_sample=self.temperature > 0,
                temperature=self.temperature if self.temperature > 0 else None,
                top_p=self.top_p if self.temperature > 0 else None,
                max_new_tokens=int(self.max_new_tokens[section]),
                pad_token_id=self.tokenizer.pad_token_id,
            )
        new = out[:, enc["input_ids"].shape[1] :]
        return [clean_output(t) for t in self.tokenizer.batch_decode(new, skip_special_tokens=True)]


# ------------------------------------------------------------------------------ the step
def attempt_seed(seed: int, batch: int, section: str, attempt: int) -> int:
    digest = hashlib.sha256(f"syncxr-report:{int(seed)}:{batch}:{section}:{attempt}".encode()).digest()
    return int.from_bytes(digest[:8], "big") & ((1 << 63) - 1)


def write_batch(samples: list[dict], generator: ReportGenerator, lexicon, *, seed: int, batch: int, max_attempts: int):
    """The report records of one global batch (see the module docstring)."""
    results: dict[int, dict[str, dict]] = {s["index"]: {} for s in samples}  # index -> section -> text, fallback
    history: dict[tuple[int, str], list[tuple[str, Check]]] = {}
    for section in SECTIONS:
        pending = list(samples)
        for attempt in range(1, max_attempts + 1):
            if not pending:
                break
            requests = [
                make_request(section, s["entities"], results[s["index"]].get("findings", {}).get("text"))
                for s in pending
            ]
            texts = generator.generate(requests, attempt_seed(seed, batch, section, attempt))
            if len(texts) != len(requests):
                raise BenchmarkError(f"the report generator returned {len(texts)} texts for {len(requests)} requests")
            failed = []
            for sample, text in zip(pending, texts):
                text = clean_output(text)
                check = check_section(text, section, sample["entities"], lexicon)
                history.setdefault((sample["index"], section), []).append((text, check))
                if check.ok:
                    results[sample["index"]][section] = {"text": text, "fallback": "", "appended": []}
                else:
                    failed.append(sample)
            pending = failed
        for sample in pending:
            attempts = history[(sample["index"], section)]
            results[sample["index"]][section] = fallback(attempts, section, sample["entities"], lexicon)
    records = []
    for sample in samples:
        index = sample["index"]
        findings, impression = results[index]["findings"], results[index]["impression"]
        found: dict[str, list[str]] = {}
        for name, category in sorted(lexicon.entity_set(findings["text"] + "\n" + impression["text"])):
            found.setdefault(category, []).append(name)
        records.append(
            {
                "index": index,
                "sample_id": sample["sample_id"],
                "entities": sample["entities"],
                "findings": findings["text"],
                "impression": impression["text"],
                **{f"{section}_attempts": len(history[(index, section)]) for section in SECTIONS},
                **{f"{section}_fallback": results[index][section]["fallback"] for section in SECTIONS},
                **{f"{section}_appended": results[index][section]["appended"] for section in SECTIONS},
                "failed_attempts": {
                    section: [c.record() for _, c in history[(index, section)] if not c.ok] for section in SECTIONS
                },
                "entities_found": found,
            }
        )
    return records


@dataclass
class ReportsConfig:
    work: Path
    llm: Path | None = None  # a local causal LM folder ...
    generator: ReportGenerator | None = None  # ... or any object with describe() and generate() (tests, plug-ins)
    batch_size: int = 8
    max_attempts: int = 3
    seed: int = 0
    temperature: float = DEFAULT_SAMPLING["temperature"]
    top_p: float = DEFAULT_SAMPLING["top_p"]
    max_new_tokens_findings: int = DEFAULT_SAMPLING["max_new_tokens"]["findings"]
    max_new_tokens_impression: int = DEFAULT_SAMPLING["max_new_tokens"]["impression"]
    device: str = "auto"
    dtype: str = "auto"
    lexicon: str | None = None
    shard: str | None = None
    overwrite: bool = False
    progress: bool = True

    def max_new_tokens(self) -> dict:
        return {"findings": int(self.max_new_tokens_findings), "impression": int(self.max_new_tokens_impression)}


def folder(work: Path) -> Path:
    return Path(work) / STEP


def has_chat_template(model_dir: Path) -> bool:
    config = Path(model_dir) / "tokenizer_config.json"
    in_config = config.is_file() and "chat_template" in json.loads(config.read_text(encoding="utf-8"))
    return in_config or (Path(model_dir) / "chat_template.jinja").is_file()


def llm_settings(cfg: ReportsConfig) -> dict:
    """The generator's settings, computed without loading the model (so a finished shard resumes
    without it); :meth:`CausalLMGenerator.describe` gives the same plus the architecture."""
    if cfg.max_attempts < 1:
        raise ConfigError(f"--max-attempts must be >= 1, got {cfg.max_attempts}")
    if cfg.generator is not None:
        return cfg.generator.describe()
    if cfg.llm is None:
        raise ConfigError("the reports step needs --llm DIR (a local transformers causal LM folder)")
    _, dtype_name, _ = resolve_device(cfg.device, cfg.dtype)
    return {
        "kind": "transformers-causal-lm",
        "model": model_record(cfg.llm),
        "chat_template": has_chat_template(Path(cfg.llm)),
        "temperature": float(cfg.temperature),
        "top_p": float(cfg.top_p),
        "do_sample": cfg.temperature > 0,
        "max_new_tokens": cfg.max_new_tokens(),
        "dtype": dtype_name,
    }


def step_settings(cfg: ReportsConfig, samples_sha256: str, lexicon) -> dict:
    return {
        "generator": llm_settings(cfg),
        "prompts": {
            "system": SYSTEM_PROMPT,
            "findings": FINDINGS_PROMPT,
            "impression": IMPRESSION_PROMPT,
            "impression_requirement": IMPRESSION_REQUIREMENT,
            "impression_normal": IMPRESSION_NORMAL,
        },
        "fallback_templates": TEMPLATES,
        "normal_sentence": NORMAL_SENTENCE,
        "min_caption_words": MIN_WORDS,
        "max_attempts": int(cfg.max_attempts),
        "seed": int(cfg.seed),
        "batch_size": int(cfg.batch_size),
        "samples_sha256": samples_sha256,
        "lexicon_version": lexicon.version,
    }


def run(cfg: ReportsConfig) -> dict | None:
    """Write (or resume) this shard's batches; merge when every batch is present."""
    timer = Timer()
    samples = read_samples(cfg.work)
    source = read_manifest(samples_folder(cfg.work), "sample", "`python -m recipes.syncxr sample`")
    lexicon = load_lexicon(cfg.lexicon)
    settings = step_settings(cfg, source["samples_sha256"], lexicon)
    out = folder(cfg.work)
    store, (n_batches, index, count, done, todo) = start_batched_step(
        out, settings, STEP, len(samples), cfg.batch_size, cfg.shard, cfg.overwrite
    )
    name = settings["generator"].get("model", {}).get("name", settings["generator"].get("kind", "generator"))
    log(
        f"reports: {len(samples)} entity sets in {n_batches} batches of {cfg.batch_size}; shard {index}/{count}: "
        f"{len(done)} batches done, {len(todo)} to write with {name}"
    )
    generated, gen_seconds = 0, 0.0
    if todo:
        generator = cfg.generator or CausalLMGenerator(
            cfg.llm,
            device=cfg.device,
            dtype=cfg.dtype,
            temperature=cfg.temperature,
            top_p=cfg.top_p,
            max_new_tokens=cfg.max_new_tokens(),
        )
        bar = progress_bar(
            sum(len(samples[b * cfg.batch_size : (b + 1) * cfg.batch_size]) for b in todo),
            STEP,
            cfg.progress,
            unit="report",
        )
        gen_timer = Timer()
        for batch in todo:
            part = samples[batch * cfg.batch_size : (batch + 1) * cfg.batch_size]
            records = write_batch(part, generator, lexicon, seed=cfg.seed, batch=batch, max_attempts=cfg.max_attempts)
            store.write(batch, records)
            generated += len(records)
            bar.update(len(records))
        bar.close()
        gen_seconds = gen_timer.seconds
    shard_info = {
        "index": index,
        "count": count,
        "reports": generated,
        "seconds": round(gen_seconds, 3),
        "reports_per_s": round(generated / gen_seconds, 4) if generated and gen_seconds else None,
        "total_seconds": round(timer.seconds, 3),
    }
    if generated:
        log(
            f"reports: shard {index}/{count} wrote {generated} reports in {gen_seconds:.1f} s "
            f"({generated / gen_seconds:.2f} reports/s)"
        )
    write_manifest(out, {"step": STEP, "shard": shard_info}, f"manifest.{index}-of-{count}.json")
    return merge(cfg.work)


def merge(work: Path) -> dict | None:
    """Join the batches into ``reports.jsonl`` + ``manifest.json`` when all are present."""
    out = folder(work)
    settings_path = out / "settings.json"
    if not settings_path.is_file():
        raise BenchmarkError(f"{out}: no reports batches yet; run `python -m recipes.syncxr reports` first")
    settings = json.loads(settings_path.read_text(encoding="utf-8"))
    store = BatchStore(out, settings, STEP)
    n_samples = len(read_samples(work))
    n_batches = batch_count(n_samples, settings["batch_size"])
    with folder_lock(out):
        if not store.complete(n_batches):
            present = sum(1 for b in range(n_batches) if store.read(b))
            log(f"reports: {present}/{n_batches} batches present; merged when every shard has finished")
            return None
        records = store.records(n_batches)
        atomic_write_text(out / TABLE, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
        shards = [json.loads(p.read_text())["shard"] for p in sorted(out.glob("manifest.*-of-*.json"))]
        manifest = {
            "step": STEP,
            "settings": settings,
            "settings_sha256": store.key,
            "reports": len(records),
            "attempts": {
                section: {
                    str(k): sum(1 for r in records if r[f"{section}_attempts"] == k)
                    for k in range(1, settings["max_attempts"] + 1)
                }
                for section in SECTIONS
            },
            "fallback": {
                section: {
                    kind or "none": sum(1 for r in records if r[f"{section}_fallback"] == kind)
                    for kind in ("", "appended", "composed")
                }
                for section in SECTIONS
            },
            "check": "every final FINDINGS and IMPRESSION passes the entity check (fallback included)",
            "table": TABLE,
            "table_sha256": file_sha256(out / TABLE),
            "shards": shards,
            **provenance(),
        }
        write_manifest(out, manifest)
    log(
        f"reports: {len(records)} reports -> {out / TABLE}; fallbacks: "
        + "; ".join(f"{s} {manifest['fallback'][s]}" for s in SECTIONS)
    )
    return manifest


def read_reports(work: Path) -> list[dict]:
    read_manifest(folder(work), STEP, "`python -m recipes.syncxr reports` (all shards)")
    path = folder(work) / TABLE
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
