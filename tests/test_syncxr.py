"""The SynCXR recipe (``recipes.syncxr``): purely synthetic image-text pairs on the demo MIMIC-CXR
replica, with tiny random models (a Llama causal LM with a BPE tokenizer trained on the demo
reports, the tiny Stable Diffusion pipeline, a tiny LLaVA), then pretraining on the result and
scoring it through one zero-shot and one supervised demo task via ``recipes.pretraining.chain
--pairs synthetic``.

The whole recipe runs once (``python -m recipes.syncxr run``, in process, module fixture); the
other tests read its outputs, rerun single steps in copies of its work folder (shards, resume,
other settings), or call the steps' functions with fake generators and judges (the success path
of the entity check, which a random model never reaches)."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from benchmark.errors import ConfigError
from recipes.mimic.pair_set import pair_set
from recipes.mimic.reports import read_report
from recipes.syncxr.__main__ import main as syncxr_main
from recipes.syncxr.lexicon import CATEGORIES, KIND_OF, Lexicon, load_lexicon
from recipes.syncxr.reports import (
    TEMPLATES,
    ReportsConfig,
    check_section,
    clean_output,
    make_request,
    write_batch,
)

COUNT = 16
pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py
RUN_ARGS = [
    "--count",
    str(COUNT),
    "--usage-ratio",
    "0.5",
    "--llm-batch-size",
    "8",
    "--max-new-tokens-findings",
    "16",
    "--max-new-tokens-impression",
    "8",
    "--height",
    "32",
    "--width",
    "32",
    "--steps",
    "2",
    "--scheduler",
    "ddim",
    "--image-batch-size",
    "8",
    "--device",
    "cpu",
    "--no-progress",
]


# ------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def models(demo_root, tmp_path_factory):
    from recipes.synthesis.tiny import write_tiny_pipeline
    from recipes.syncxr.tiny import tiny_sd_images, write_tiny_causal_lm, write_tiny_image_text_model

    base = tmp_path_factory.mktemp("syncxr-models")
    sd = write_tiny_pipeline(base / "tiny-sd")
    return {
        "llm": write_tiny_causal_lm(demo_root, base / "tiny-llm"),
        "sd": sd,
        "mllm": write_tiny_image_text_model(base / "tiny-mllm", calibration=tiny_sd_images(sd)),
    }


@pytest.fixture(scope="module")
def recipe(demo_root, models, tmp_path_factory):
    base = tmp_path_factory.mktemp("syncxr-run")
    work, out = base / "work", base / "root"
    args = ["run", "--data-root", str(demo_root), "--work", str(work), "--output", str(out)]
    args += ["--llm", str(models["llm"]), "--image-model", str(models["sd"]), "--mllm", str(models["mllm"])]
    assert syncxr_main(args + RUN_ARGS) == 0
    return work, out


def manifest(work, step):
    return json.loads((work / step / "manifest.json").read_text())


def copy_work(work, target, steps):
    for step in steps:
        shutil.copytree(work / step, target / step, symlinks=True)
    return target


# ------------------------------------------------------------------------------ 1. entities
def test_lexicon_categories_negation_and_absence_phrases():
    lexicon = load_lexicon()
    cases = {
        "There is a small left pleural effusion. No pneumothorax. The heart size is normal.": {
            ("pleural effusion", "abnormality"),
            ("pneumothorax", "non-abnormality"),
            ("cardiomegaly", "non-abnormality"),
        },
        "Findings concerning for pneumonia. No evidence of tuberculosis.": {
            ("pneumonia", "disease"),
            ("tuberculosis", "non-disease"),
        },
        "Faint opacity in the left lung; early pneumonia cannot be excluded.": {
            ("lung opacity", "abnormality"),
            ("left lung", "anatomy"),
            ("pneumonia", "disease"),
        },
        "No pleural effusions or focal consolidation, but mild pulmonary edema. Pneumothorax is no longer seen.": {
            ("pleural effusion", "non-abnormality"),
            ("consolidation", "non-abnormality"),
            ("pulmonary edema", "abnormality"),
            ("pneumothorax", "non-abnormality"),
        },
        "No change in the bibasilar atelectasis. The heart is moderately enlarged.": {
            ("atelectasis", "abnormality"),
            ("lung bases", "anatomy"),
            ("cardiomegaly", "abnormality"),
        },
    }
    for text, expected in cases.items():
        assert lexicon.entity_set(text) == expected, text
    assert len(lexicon.version) == 64 and {KIND_OF[c] for c in CATEGORIES} == {"abnormality", "disease", "anatomy"}


def test_every_fallback_sentence_is_found_by_the_extractor():
    """The fallback rule relies on it: each entity, in each category it can take, is extracted from
    its template sentence (the entity name is one of its phrases)."""
    lexicon = load_lexicon()
    checked = 0
    for category in CATEGORIES:
        for name in lexicon.names(KIND_OF[category]):
            sentence = TEMPLATES[category].format(entity=name)
            assert (name, category) in lexicon.entity_set(sentence), sentence
            checked += 1
    assert checked == 2 * 27 + 2 * 18 + 26


def test_lexicon_refuses_a_phrase_of_two_entities_and_a_missing_name(tmp_path):
    from recipes.syncxr.lexicon import LEXICON_DIR

    for name in ("abnormality.txt", "disease.txt", "anatomy.txt", "negation.txt"):
        shutil.copy(LEXICON_DIR / name, tmp_path / name)
    with open(tmp_path / "disease.txt", "a") as handle:
        handle.write("fluid disease | - | fluid disease; pleural fluid\n")
    with pytest.raises(ConfigError, match="'pleural fluid' also belongs to abnormality:pleural effusion"):
        Lexicon(tmp_path)
    shutil.copy(LEXICON_DIR / "disease.txt", tmp_path / "disease.txt")
    with open(tmp_path / "anatomy.txt", "a") as handle:
        handle.write("sternum | - | sternal bone\n")
    with pytest.raises(ConfigError, match="the entity name 'sternum' must be one of its"):
        Lexicon(tmp_path)


def test_entity_table_matches_the_demo_reports_ground_truth(demo_root, recipe):
    """The demo writer records the CheXpert label a labeller reads from each report (1 stated, -1
    uncertain, 0 negated); the extractor must agree on all 7 drawn findings of every study, and the
    table's report counts must be those studies' counts."""
    work, _ = recipe
    truth = json.loads((demo_root / ".demo_truth" / "mimic-cxr-jpg.json").read_text())["studies"]
    entity_of = {
        "Pleural Effusion": ("pleural effusion", "abnormality"),
        "Cardiomegaly": ("cardiomegaly", "abnormality"),
        "Atelectasis": ("atelectasis", "abnormality"),
        "Consolidation": ("consolidation", "abnormality"),
        "Edema": ("pulmonary edema", "abnormality"),
        "Pneumothorax": ("pneumothorax", "abnormality"),
        "Pneumonia": ("pneumonia", "disease"),
    }
    pairs = pair_set(demo_root)
    studies = {f"s{s}" for s in pairs["study_id"]}
    lexicon = load_lexicon()
    expected = {}
    for study_id in studies:
        study = truth[study_id]
        sections = read_report(demo_root / study["report"])
        found = lexicon.entity_set(sections.get("findings", "") + "\n" + sections.get("impression", ""))
        for label, (name, kind) in entity_of.items():
            value = study["labels"][label]
            want = set() if value is None else {(name, kind if value != 0.0 else f"non-{kind}")}
            assert {f for f in found if f[0] == name} == want, (study_id, label, sections)
            for pair in want:
                expected[pair] = expected.get(pair, 0) + 1
    table = pd.read_csv(work / "entities" / "entities.csv")
    counts = {(e, c): r for e, c, r in zip(table["entity"], table["category"], table["reports"])}
    for pair, n in expected.items():
        assert counts[(pair[0], pair[1])] == n, pair
    info = manifest(work, "entities")
    assert info["reports"] == len(studies) and info["settings"]["lexicon_version"] == lexicon.version
    assert info["table_version"] == f"v1-{lexicon.version[:8]}-{info['table_sha256'][:8]}"
    assert len(table) == 2 * 27 + 2 * 18 + 26 and (table.groupby("category")["rank"].min() == 1).all()


def test_entity_shards_in_small_chunks_give_the_same_table(demo_root, recipe, tmp_path):
    from recipes.syncxr.entities import EntitiesConfig, run

    work, _ = recipe
    config = dict(data_root=demo_root, work=tmp_path, chunk_size=7, progress=False)
    assert run(EntitiesConfig(shard="1/2", **config)) is None  # chunks 1, 3, ...: not merged yet
    assert run(EntitiesConfig(shard="0/2", **config))["reports"] == manifest(work, "entities")["reports"]
    assert (tmp_path / "entities" / "entities.csv").read_bytes() == (work / "entities" / "entities.csv").read_bytes()


# ------------------------------------------------------------------------------ 2. sampling
def test_sampling_cap_balance_determinism_and_plots(recipe):
    from recipes.syncxr.sampling import SamplingConfig, draw_sets, usage_cap

    work, _ = recipe
    info = manifest(work, "samples")
    frequencies = pd.read_csv(work / "samples" / "frequencies.csv")
    cap = usage_cap(0.5, COUNT)
    assert info["settings"]["cap"] == cap == 8 and (frequencies["sampled_sets"] <= cap).all()
    samples = [json.loads(line) for line in (work / "samples" / "samples.jsonl").read_text().splitlines()]
    assert [s["index"] for s in samples] == list(range(COUNT)) and len({s["dicom_id"] for s in samples}) == COUNT
    assert all(s["subject_id"] == 90_000_000 + s["index"] for s in samples)
    for s in samples:  # never present and negated in one set
        assert not set(s["entities"]["abnormality"]) & set(s["entities"]["non-abnormality"])
    abnormality = info["balance"]["abnormality"]
    assert abnormality["after"]["entropy"] > abnormality["before"]["entropy"]
    for name in ("before.png", "after.png"):
        assert (work / "samples" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # a hand-computed case: 2 entities, one per set, cap 2 of 4 sets -> each used exactly twice
    pool = pd.DataFrame({"entity": ["a", "b"], "reports": [100, 1], "share": [0.9, 0.01]})
    empty = pool.iloc[:0]
    pools = {c: (pool if c == "abnormality" else empty) for c in CATEGORIES}
    ranges = {c: ((1, 1) if c == "abnormality" else (0, 0)) for c in CATEGORIES}
    cfg = SamplingConfig(work=work, count=4, usage_ratio=0.5, ranges=ranges, weighting="frequency")
    sets, short = draw_sets(pools, cfg)
    assert sorted(n for s in sets for n in s["abnormality"]) == ["a", "a", "b", "b"] and short["abnormality"] == 0
    cfg = SamplingConfig(work=work, count=4, usage_ratio=0.25, ranges=ranges)  # cap 1: two draws fall short
    assert draw_sets(pools, cfg)[1]["abnormality"] == 2
    # deterministic per seed; another seed draws other sets
    table = pd.read_csv(work / "entities" / "entities.csv")
    real = {c: table[(table["category"] == c) & (table["reports"] > 0)].reset_index(drop=True) for c in CATEGORIES}
    same = SamplingConfig(work=work, count=COUNT, usage_ratio=0.5)
    assert draw_sets(real, same)[0] == [s["entities"] for s in samples]
    assert (
        draw_sets(real, SamplingConfig(work=work, count=COUNT, usage_ratio=0.5, seed=1))[0] != draw_sets(real, same)[0]
    )


# ------------------------------------------------------------------------------ 3. reports
SAMPLE = {
    "index": 0,
    "sample_id": "syncxr-0000000",
    "entities": {
        "abnormality": ["cardiomegaly"],
        "non-abnormality": ["pleural effusion"],
        "disease": ["pneumonia"],
        "non-disease": ["tuberculosis"],
        "anatomy": ["lung bases"],
    },
}


class FakeGenerator:
    """Writes sections in its own words; ``bad_first`` answers the first call of each section with
    text naming no entity; ``contradict`` states the absent effusion as present."""

    def __init__(self, bad_first=False, contradict=False, gibberish=False):
        self.bad_first, self.contradict, self.gibberish = bad_first, contradict, gibberish
        self.calls: dict[str, int] = {}

    def describe(self):
        return {"kind": "fake", "bad_first": self.bad_first, "contradict": self.contradict}

    def text(self, request):
        e = request.entities
        if self.gibberish:
            return "lorem ipsum dolor sit amet"
        if self.contradict:
            return "A large pleural effusion is present. " + " ".join(f"A {n} is present." for n in e["abnormality"])
        if request.section == "impression":
            found = [f"Findings suggest {n}." for n in e["abnormality"] + e["disease"]]
            return "IMPRESSION: " + (" ".join(found) or "Normal chest radiograph without acute change.")
        parts = [f"A {n} is present." for n in e["abnormality"]]
        parts += [f"No {n} is seen." for n in e["non-abnormality"]]
        parts += [f"Appearance suggests {n}." for n in e["disease"]]
        parts += [f"No signs of {n}." for n in e["non-disease"]]
        parts += [f"The {n} are unremarkable." for n in e["anatomy"]]
        return "FINDINGS:\n" + " ".join(parts)

    def generate(self, requests, seed):
        section = requests[0].section
        self.calls[section] = self.calls.get(section, 0) + 1
        if self.bad_first and self.calls[section] == 1:
            return ["The study was reviewed today." for _ in requests]
        return [self.text(r) for r in requests]


def test_entity_check_success_retry_and_both_fallbacks():
    lexicon = load_lexicon()
    (good,) = write_batch([SAMPLE], FakeGenerator(), lexicon, seed=0, batch=0, max_attempts=3)
    assert good["findings_attempts"] == good["impression_attempts"] == 1
    assert good["findings_fallback"] == good["impression_fallback"] == "" and good["failed_attempts"]["findings"] == []
    assert good["findings"].startswith("A cardiomegaly is present.") and "FINDINGS" not in good["findings"]
    assert good["impression"] == "Findings suggest cardiomegaly. Findings suggest pneumonia."
    assert good["entities_found"]["non-disease"] == ["tuberculosis"]

    (retried,) = write_batch([SAMPLE], FakeGenerator(bad_first=True), lexicon, seed=0, batch=0, max_attempts=3)
    assert retried["findings_attempts"] == retried["impression_attempts"] == 2
    assert retried["findings"] == good["findings"] and retried["findings_fallback"] == ""
    first = retried["failed_attempts"]["findings"][0]
    assert ["lung bases", "anatomy"] in first["missing"] and first["contradicted"] == []

    (composed,) = write_batch([SAMPLE], FakeGenerator(contradict=True), lexicon, seed=0, batch=0, max_attempts=2)
    assert composed["findings_attempts"] == 2 and composed["findings_fallback"] == "composed"
    assert composed["findings"] == (
        "There is cardiomegaly. There is no pleural effusion. The findings are consistent with pneumonia. "
        "There is no evidence of tuberculosis. Evaluation of the lung bases."
    )
    assert composed["impression_fallback"] == "composed"
    assert composed["impression"] == "There is cardiomegaly. The findings are consistent with pneumonia."

    (appended,) = write_batch([SAMPLE], FakeGenerator(gibberish=True), lexicon, seed=0, batch=0, max_attempts=1)
    assert appended["findings"].startswith("lorem ipsum dolor sit amet. There is cardiomegaly.")
    assert appended["findings_fallback"] == "appended" and len(appended["findings_appended"]) == 5
    for section in ("findings", "impression"):
        assert check_section(appended[section], section, SAMPLE["entities"], lexicon).ok


def test_prompts_and_output_cleaning():
    request = make_request("findings", SAMPLE["entities"])
    assert request.messages[0]["role"] == "system" and "present: cardiomegaly" in request.messages[1]["content"]
    assert "ruled out (state that there is no evidence of them): tuberculosis" in request.messages[1]["content"]
    impression = make_request("impression", SAMPLE["entities"], findings="There is cardiomegaly.")
    assert "exact terms: cardiomegaly, pneumonia." in impression.messages[1]["content"]
    assert clean_output("Findings:\x07 Mild\n\n cardiomegaly.\nIMPRESSION: normal") == "Mild cardiomegaly."


def test_reports_from_the_tiny_llm_pass_the_check_and_record_the_model(recipe, models):
    work, _ = recipe
    info = manifest(work, "reports")
    generator = info["settings"]["generator"]
    assert generator["model"]["name"] == "tiny-llm" and len(generator["model"]["content_sha256_16"]) == 16
    assert generator["chat_template"] is True and info["settings"]["max_attempts"] == 3
    records = [json.loads(line) for line in (work / "reports" / "reports.jsonl").read_text().splitlines()]
    lexicon = load_lexicon()
    for record in records:
        for section in ("findings", "impression"):
            assert check_section(record[section], section, record["entities"], lexicon).ok
            assert 1 <= record[f"{section}_attempts"] <= 3
            if record[f"{section}_fallback"]:  # a random model: the fallback after the 3rd attempt
                assert record[f"{section}_attempts"] == 3
    fallbacks = sum(r["findings_fallback"] != "" for r in records)
    assert (
        fallbacks >= COUNT // 2
        and info["fallback"]["findings"]["appended"] + info["fallback"]["findings"]["composed"] == fallbacks
    )


def test_reports_shards_resume_and_refuse_other_settings(recipe, models, tmp_path):
    from recipes.syncxr import reports

    work, _ = recipe
    other = copy_work(work, tmp_path, ["entities", "samples"])

    def config(**kw):
        base = dict(work=other, llm=models["llm"], batch_size=8, max_new_tokens_findings=16)
        base.update(max_new_tokens_impression=8, device="cpu", progress=False)
        return ReportsConfig(**{**base, **kw})

    assert reports.run(config(shard="1/2")) is None  # batch 1 only: not merged yet
    assert reports.run(config(shard="0/2")) is not None
    expected = (work / "reports" / "reports.jsonl").read_bytes()
    assert (other / "reports" / "reports.jsonl").read_bytes() == expected  # any sharding, same reports
    (other / "reports" / "batches" / "000001.json").unlink()  # a killed run: the batch is redone identically
    reports.run(config())
    assert (other / "reports" / "reports.jsonl").read_bytes() == expected
    with pytest.raises(ConfigError, match="made with other settings.*--overwrite"):
        reports.run(config(max_attempts=2))


# ------------------------------------------------------------------------------ 4. images and curation
def test_images_come_from_the_synthetic_impressions(recipe):
    from recipes.synthesis.generate import read_manifest

    work, _ = recipe
    images = read_manifest(work / "images")
    records = {json.loads(x)["sample_id"]: json.loads(x) for x in (work / "reports" / "reports.jsonl").open()}
    samples = {json.loads(x)["dicom_id"]: json.loads(x) for x in (work / "samples" / "samples.jsonl").open()}
    assert len(images) == COUNT and set(images["dicom_id"]) == set(samples)
    for row in images.itertuples():  # the IMPRESSION, cut at a word boundary to CLIP's 77 tokens
        impression = records[samples[row.dicom_id]["sample_id"]]["impression"]
        assert row.prompt == impression or (str(row.prompt_truncated) == "True" and impression.startswith(row.prompt))
        assert (row.height, row.width, row.steps) == (32, 32, 2)
    info = manifest(work, "images")
    assert info["prompt_section"] == "impression" and info["synthesis"]["seed_mode"] == "per-report"


def test_curation_keeps_and_discards_with_reasons_and_the_recorded_probability(recipe, models):
    from recipes.syncxr.curation import ImageJudge, load_image

    work, _ = recipe
    info = manifest(work, "curation")
    table = pd.read_csv(work / "curation" / "curation.csv", keep_default_na=False)
    assert info["kept"] + info["discarded"] == COUNT == len(table) and info["kept"] >= 2 and info["discarded"] >= 1
    assert (
        info["settings"]["judge"]["model"]["name"] == "tiny-mllm" and "Answer yes or no" in info["settings"]["question"]
    )
    assert list(table["keep"]) == [p >= 0.5 for p in table["p_yes"]]
    for row in table[~table["keep"]].itertuples():
        assert row.reason == f"mllm: p(yes) {row.p_yes:.4f} < 0.5"
    judge = ImageJudge(models["mllm"], device="cpu")
    row = table.iloc[0]
    assert judge.p_yes([load_image(work / "images" / row["path"])])[0] == pytest.approx(row["p_yes"], abs=2e-6)


class FakeJudge:
    def describe(self):
        return {"kind": "fake judge"}

    def p_yes(self, images):
        return [0.25 + 0.5 * (k % 2) for k in range(len(images))]


def test_curation_rule_threshold_and_bad_synthesis_images(recipe, tmp_path):
    from recipes.syncxr import curation

    work, _ = recipe
    other = copy_work(work, tmp_path, ["samples", "images"])
    manifest_path = other / "images" / "synthesis_manifest.csv"
    images = pd.read_csv(manifest_path, dtype=str, keep_default_na=False)
    images.loc[3, "bad"] = "constant"
    images.to_csv(manifest_path, index=False)
    result = curation.run(curation.CurationConfig(work=other, judge=FakeJudge(), batch_size=8, progress=False))
    table = pd.read_csv(other / "curation" / "curation.csv", keep_default_na=False)
    # batch 0: row 3 is not asked, the 7 others get 0.25, 0.75, ... in turn; batch 1: all 8 asked
    assert result["discarded_by"] == {"mllm": 8, "synthesis": 1} and result["kept"] == 7
    assert table.loc[3, "reason"] == "synthesis: constant after its retry" and table.loc[3, "p_yes"] == ""
    assert table.loc[0, "reason"] == "mllm: p(yes) 0.2500 < 0.5" and table.loc[1, "keep"]


# ------------------------------------------------------------------------------ 5. the data root
def test_root_is_read_by_the_pretraining_loader_with_no_change(recipe):
    from recipes.pretraining.data import SourceSpec, load_pretraining_pairs
    from recipes.syncxr.root import BuildConfig, run

    work, out = recipe
    kept = pd.read_csv(work / "curation" / "curation.csv", keep_default_na=False)
    kept = kept[kept["keep"]]
    pairs = load_pretraining_pairs(out, SourceSpec("real"))
    assert sorted(pairs["dicom_id"]) == sorted(kept["dicom_id"]) and (pairs["image_kind"] == "real").all()
    records = {json.loads(x)["sample_id"]: json.loads(x) for x in (work / "reports" / "reports.jsonl").open()}
    for row in pairs.itertuples():
        assert row.subject_id >= 90_000_000 and row.ViewPosition == "PA" and os.path.isfile(row.image_path)
        record = records[f"syncxr-{row.subject_id - 90_000_000:07d}"]
        assert (row.findings, row.impression) == (record["findings"], record["impression"])
        assert os.path.samefile(row.image_path, work / "images" / kept.set_index("dicom_id").loc[row.dicom_id, "path"])
    summary = json.loads((out / "SYNCXR.json").read_text())
    assert summary["pairs"]["synthetic"] == len(kept) and summary["pairs"]["real"] == 0
    assert (
        summary["pairs"]["discarded_synthetic"] == COUNT - len(kept) == len(pd.read_csv(out / "syncxr_discarded.csv"))
    )
    assert summary["steps"]["curation"]["rule"].startswith("keep iff p(yes) >= threshold")
    assert summary["steps"]["reports"]["generator"]["model"]["name"] == "tiny-llm"
    chexpert = pd.read_csv(out / "mimic-cxr-jpg" / "2.0.0" / "mimic-cxr-2.0.0-chexpert.csv.gz")
    assert len(chexpert) == len(kept) and set(chexpert["No Finding"].dropna()) <= {1.0}
    before = {p: p.stat().st_ino for p in out.rglob("*.jpg")}
    assert run(BuildConfig(work=work, output=out, progress=False))["pair_set"] == summary["pair_set"]  # a rerun
    assert {p: p.stat().st_ino for p in out.rglob("*.jpg")} == before


def test_mixed_root_holds_real_and_synthetic_pairs_at_the_ratio(recipe, demo_root, tmp_path):
    from recipes.syncxr.root import BuildConfig, mix_counts, run

    work, out = recipe
    n_kept = json.loads((out / "SYNCXR.json").read_text())["pairs"]["synthetic"]
    assert mix_counts(10, 70, 0.25, None) == (10, 30) and mix_counts(10, 70, 0.5, 8) == (4, 4)
    with pytest.raises(ConfigError, match="needs 9 synthetic"):
        mix_counts(5, 70, 0.9, 10)
    summary = run(
        BuildConfig(work=work, output=tmp_path / "mixed", mix_real=demo_root, synthetic_ratio=0.5, progress=False)
    )
    assert summary["pairs"]["synthetic"] == summary["pairs"]["real"] == n_kept
    pairs = pair_set(tmp_path / "mixed")
    table = pd.read_csv(tmp_path / "mixed" / "syncxr_pairs.csv", keep_default_na=False)
    assert len(pairs) == 2 * n_kept and set(pairs["dicom_id"]) == set(table["dicom_id"])
    real = pairs[pairs["subject_id"] < 90_000_000]
    demo = pair_set(demo_root).set_index("dicom_id")
    assert len(real) == n_kept and all(os.path.islink(p) for p in real["image_path"])
    for row in real.itertuples():
        assert row.impression == demo.loc[row.dicom_id, "impression"]
    with pytest.raises(ConfigError, match="built with other settings"):
        run(BuildConfig(work=work, output=tmp_path / "mixed", mix_real=demo_root, synthetic_ratio=0.25))


# ------------------------------------------------------------------------------ 6. pretraining + benchmark
def test_chain_pretrains_on_purely_synthetic_pairs_and_scores_them(recipe, demo_root, tmp_path, monkeypatch):
    import yaml

    from benchmark.results import read_results
    from benchmark.submissions import expected_units, load_metadata, validate_submission
    from recipes.pretraining.chain import main as chain_main
    from recipes.pretraining.tiny_text import write_tiny_bert

    _, out = recipe
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the chain's subprocesses
    bert = write_tiny_bert(out, tmp_path / "tiny-bert")  # a tokenizer learnt from the synthetic reports
    work, subs = tmp_path / "work", tmp_path / "submissions"
    pretrain = ["--arch", "resnet_tiny", "--image-init", "random", "--resize", "40", "--crop", "32", "--upsample", "0"]
    pretrain += ["--max-words", "32", "--batch-size", "2", "--max-steps", "3", "--workers", "0", "--no-progress"]
    pretrain += ["--no-validate", "--device", "cpu", "--seed", "0", "--hp", "proj_hidden=32"]
    meta = ["paper=n/a", "code=n/a", "licence=Apache-2.0", "contact=medvlp-bench maintainers", "checkpoint.url=n/a"]
    rc = chain_main(
        ["--method", "convirt", "--generator", "tiny-sd", "--pairs", "synthetic", "--syncxr-root", str(out)]
        + ["--data-root", str(demo_root), "--text-encoder", str(bert), "--work", str(work)]
        + [
            "--benchmark-args",
            f"--suite demo --demo-root {demo_root} --cache-dir {tmp_path / 'cache'} --device cpu "
            "--workers 0 --no-progress --tasks rsna_cls,rsna_zeroshot --fractions 100",
        ]
        + ["--submission", "syncxr", "--submissions-dir", str(subs)]
        + [x for m in meta for x in ("--meta", m)]
        + ["--", *pretrain]
    )
    assert rc == 1  # the submission lacks the units deliberately not run (checked below)
    checkpoint = work / "pretrain" / "convirt-syncxr-tiny-sd-resnet_tiny.ckpt"
    assert os.path.samefile(checkpoint, work / "pretrain" / "convirt-real-resnet_tiny.ckpt")
    record = torch.load(checkpoint, weights_only=True)["medvlp"]
    assert record["data_root"] == str(out) and record["image_source"] == "real"
    assert record["pair_set"] == json.loads((out / "SYNCXR.json").read_text())["pair_set"]
    results = read_results(subs / "syncxr" / "results" / "demo")
    assert {(r.unit.task, r.unit.fraction) for r in results} == {("rsna_cls", 100), ("rsna_zeroshot", 100)}
    assert all(0.0 <= r.value <= 1.0 and np.isfinite(r.value) for r in results)
    metadata = load_metadata(subs / "syncxr")
    assert metadata.pretraining.images == "synthetic" and metadata.pretraining.reports == "synthetic"
    assert metadata.pretraining.label() == "synthetic (other generator), synthetic reports"
    assert yaml.safe_load((subs / "syncxr" / "submission.yaml").read_text())["encoder_spec"] == checkpoint.name
    problems = validate_submission(subs / "syncxr")
    missing = expected_units("demo", zeroshot=True) - {(r.unit.task, r.unit.fraction, r.unit.seed) for r in results}
    assert problems[0].startswith(f"demo: {len(missing)} missing unit(s): ") and problems[1:] == []


def test_chain_plans_the_syncxr_step_and_pretrains_on_its_root(capsys):
    from recipes.pretraining.chain import main as chain_main

    args = ["--method", "mgca", "--generator", "roentgen", "--pairs", "synthetic", "--data-root", "/data"]
    args += ["--text-encoder", "/bert", "--work", "/w", "--synthesis-model", "/sd", "--report-model", "/llama"]
    assert chain_main(args + ["--curation-model", "/internvl", "--syncxr-args", "--count 200000", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "-m recipes.syncxr run --data-root /data --work /w/syncxr --output /w/syncxr-root --llm /llama" in out
    assert (
        "--image-model /sd --mllm /internvl --preset roentgen --steps 50 --generator-name roentgen --count 200000"
        in out
    )
    assert "--data-root /w/syncxr-root --text-encoder /bert" in out and "--image-source" not in out
    assert "--encoder /w/pretrain/mgca-syncxr-roentgen-resnet50.ckpt" in out
    with pytest.raises(SystemExit, match="--pairs synthetic needs an image generator"):
        chain_main(
            ["--method", "mgca", "--generator", "real", "--pairs", "synthetic", "--data-root", "/d"]
            + ["--text-encoder", "/b", "--work", "/w", "--dry-run"]
        )


def test_leaderboard_label_shows_synthetic_reports_and_keeps_the_others():
    from benchmark.submissions import Pretraining

    assert Pretraining(images="synthetic", generator="other", reports="synthetic").label() == (
        "synthetic (other generator), synthetic reports"
    )
    assert Pretraining(images="synthetic", generator="roentgen").label() == "RoentGen"
    assert Pretraining(images="mixed", generator="sd21", mix_ratio=0.3).label() == "mixed (SD 2.1, 0.3)"
    assert Pretraining(images="real").label() == "real" and Pretraining(images="none", reports="none").label() == "none"


def test_cli_documents_every_step():
    from recipes.syncxr.__main__ import build_parser

    parser = build_parser()
    for command in ("entities", "sample", "reports", "images", "curate", "build", "merge", "run"):
        with pytest.raises(SystemExit) as done:
            parser.parse_args([command, "--help"])
        assert done.value.code == 0
