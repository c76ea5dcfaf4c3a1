"""Synthetic-image recipe: a TINY random Stable Diffusion pipeline run on the demo MIMIC-CXR-JPG replica."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from benchmark.errors import ConfigError, DatasetNotFoundError
from recipes.mimic import MimicLayout
from recipes.mimic.pair_set import pair_set, pair_set_summary
from recipes.synthesis import generate as gen
from recipes.synthesis.generate import GenerationConfig, generate, read_manifest
from recipes.synthesis.quality import fid, frechet_distance, ms_ssim, ms_ssim_scales, quality_report
from recipes.synthesis.tiny import write_tiny_pipeline

LIMIT, SIDE, STEPS = 6, 32, 2


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return write_tiny_pipeline(tmp_path_factory.mktemp("tiny-sd") / "tiny-sd")


def config(demo_root, model, output, **kw) -> GenerationConfig:
    base = dict(height=SIDE, width=SIDE, steps=STEPS, limit=LIMIT, batch_size=4, progress=False)
    return GenerationConfig(data_root=demo_root, model=model, output=output, **{**base, **kw})


@pytest.fixture(scope="module")
def full_run(demo_root, tiny_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("synth-full")
    summary = generate(config(demo_root, tiny_model, out), log=lambda *_: None)
    return out, summary


def images_by_id(out) -> dict[str, bytes]:
    return {r.dicom_id: (out / r.path).read_bytes() for r in read_manifest(out).itertuples()}


def test_layout_mirrors_input_and_manifest_is_complete(demo_root, full_run):
    out, summary = full_run
    manifest = read_manifest(out)
    expected = pair_set(demo_root).head(LIMIT)
    assert summary["generated"] == LIMIT and summary["planned"] == LIMIT
    assert list(manifest["dicom_id"]) == list(expected["dicom_id"])  # merged deterministically (ids order)
    for column in gen.MANIFEST_COLUMNS:
        assert column in manifest.columns, column
        if column not in ("retry", "bad"):  # empty = the image passed its checks
            assert manifest[column].astype(str).str.len().min() > 0, column
    assert (manifest.retry == "").all() and (manifest.bad == "").all()
    real_jpg = MimicLayout(demo_root).jpg
    for row, pair in zip(manifest.itertuples(), expected.itertuples()):
        path = out / row.path
        assert path.relative_to(MimicLayout(out).jpg) == __import__("pathlib").Path(pair.image_path).relative_to(
            real_jpg
        )
        data = path.read_bytes()
        assert hashlib.sha256(data).hexdigest() == row.sha256 and data[:2] == b"\xff\xd8"  # a JPEG
        from PIL import Image

        with Image.open(path) as im:
            assert im.mode == "L" and im.size == (SIDE, SIDE)
        assert row.prompt == pair.prompt and not row.prompt_truncated
        assert (row.steps, row.guidance, row.height, row.seed, row.scheduler) == (STEPS, 7.5, SIDE, 42, "DDIMScheduler")
    assert not list(out.rglob(".*.tmp"))  # atomic writes left nothing behind


def test_plan_is_the_pretraining_pair_set_and_prompts_fall_back_to_findings(demo_root, tiny_model, tmp_path):
    from transformers import CLIPTokenizer

    tokenizer = CLIPTokenizer.from_pretrained(str(tiny_model / "tokenizer"))
    planned = gen.plan(GenerationConfig(data_root=demo_root, model=tiny_model, output=tmp_path / "unused"), tokenizer)
    pairs = pair_set(demo_root)
    assert list(planned.dicom_id) == list(pairs.dicom_id)  # every pair pretraining uses, no other
    assert pair_set_summary(planned) == pair_set_summary(pairs)
    expected = [
        f"{i.strip()} {f.strip()}".strip() if section == "impression+findings" else i.strip()
        for i, f, section in zip(planned.impression, planned.findings, planned.prompt_section)
    ]
    assert (planned.prompt_section == "impression+findings").sum() > 0
    for prompt, full, truncated in zip(planned.prompt, expected, planned.prompt_truncated):
        assert prompt == full if not truncated else (full.startswith(prompt) and len(prompt) < len(full))


def test_a_full_synthetic_root_covers_the_pretraining_pairs(demo_root, full_run, tmp_path):
    from recipes.pretraining.data import SourceSpec, load_pretraining_pairs

    out, summary = full_run
    assert summary["pair_set"] == pair_set_summary(pair_set(demo_root).head(LIMIT))
    assert summary["prompts_impression_findings"] == int(
        (pair_set(demo_root).head(LIMIT).prompt_section != "impression").sum()
    )
    with pytest.raises(DatasetNotFoundError, match="does not cover this run's pair set"):  # --limit made a partial root
        load_pretraining_pairs(demo_root, SourceSpec("synthetic", str(out)))


def test_pretraining_reads_the_synthetic_root_with_no_conversion(demo_root, full_run):
    out, _ = full_run
    synthetic, real = pair_set(out), pair_set(demo_root).head(LIMIT)
    assert list(synthetic["dicom_id"]) == list(real["dicom_id"])
    assert list(synthetic["impression"]) == list(real["impression"])  # the real reports, found through OUT
    assert all(p.startswith(str(out)) for p in synthetic["image_path"])
    assert all(__import__("os").path.isfile(p) for p in synthetic["image_path"])
    assert set(synthetic["Rows"]) == {SIDE} and set(synthetic["split"]) <= {"train", "validate", "test"}
    assert (MimicLayout(out).jpg / "mimic-cxr-2.0.0-chexpert.csv.gz").is_file()


def test_shards_together_equal_the_full_run(demo_root, tiny_model, full_run, tmp_path, monkeypatch):
    from recipes.synthesis.cli import main

    out = tmp_path / "sharded"
    common = [
        "--data-root",
        str(demo_root),
        "--model",
        str(tiny_model),
        "--output",
        str(out),
        "--height",
        str(SIDE),
        "--width",
        str(SIDE),
        "--steps",
        str(STEPS),
        "--limit",
        str(LIMIT),
        "--batch-size",
        "4",
        "--no-progress",
    ]
    assert main(["generate", *common, "--shard", "0/2"]) == 0
    assert (
        len(read_manifest(out)) == 4
    )  # whole global batches: shard 0 has batch 0 (rows 0-3), shard 1 batch 1 (rows 4-5)
    monkeypatch.setenv("RANK", "1")  # the second half as torchrun rank 1 of 2
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["generate", *common]) == 0
    assert sorted(p.name for p in out.glob("synthesis_manifest.*-of-*.csv")) == [
        "synthesis_manifest.0-of-2.csv",
        "synthesis_manifest.1-of-2.csv",
    ]
    assert images_by_id(out) == images_by_id(full_run[0])  # byte for byte
    assert gen.read_manifest(out)["sha256"].tolist() == read_manifest(full_run[0])["sha256"].tolist()


def test_killed_run_resumes_without_regenerating_finished_images(
    demo_root, tiny_model, full_run, tmp_path, monkeypatch
):
    out = tmp_path / "killed"
    real_write, written = gen.write_image, []

    def dying_write(path, data):
        if len(written) == 3:
            raise RuntimeError("killed")
        real_write(path, data)
        written.append(path)

    monkeypatch.setattr(gen, "write_image", dying_write)
    with pytest.raises(RuntimeError, match="killed"):
        generate(config(demo_root, tiny_model, out), log=lambda *_: None)  # dies inside the first batch of 4
    monkeypatch.setattr(gen, "write_image", real_write)
    shard_manifest = gen.read_manifest_file(out / "synthesis_manifest.0-of-1.csv")
    assert len(shard_manifest) == 3 and all(p.is_file() for p in written)
    written[0].unlink()  # lost
    written[1].write_bytes(b"\xff\xd8 torn")  # corrupt
    mtime = written[2].stat().st_mtime_ns
    summary = generate(config(demo_root, tiny_model, out), log=lambda *_: None)
    assert summary["kept"] == 1 and summary["generated"] == LIMIT - 1
    assert written[2].stat().st_mtime_ns == mtime  # the intact finished image was not rewritten
    assert images_by_id(out) == images_by_id(full_run[0])
    again = generate(config(demo_root, tiny_model, out), log=lambda *_: None)
    assert again["generated"] == 0 and again["kept"] == LIMIT
    gen.finalize(out, demo_root, reports="copy")  # a self-contained copy of the reports instead of the link
    reports = out / "mimic-cxr" / "2.0.0" / "files"
    assert not reports.is_symlink() and len(list(reports.rglob("*.txt"))) == pair_set(out)["study_id"].nunique()


def test_other_settings_into_the_same_output_are_refused(demo_root, tiny_model, full_run):
    with pytest.raises(ConfigError, match="other settings"):
        generate(config(demo_root, tiny_model, full_run[0], steps=STEPS + 1), log=lambda *_: None)


def test_same_seed_same_pixels(tiny_model):
    import torch

    pipe = gen.load_pipeline(tiny_model, torch.float32, torch.device("cpu"))
    kw = dict(height=SIDE, width=SIDE, steps=STEPS, guidance=4.0)
    a = gen.synthesize(pipe, ["left pleural effusion", "no acute process"], [7, 8], **kw)
    b = gen.synthesize(pipe, ["no acute process"], [8], **kw)
    c = gen.synthesize(pipe, ["left pleural effusion"], [9], **kw)
    assert (
        np.array_equal(a[1], b[0]) and a[0].shape
    )  # fp32 CPU: also across batch sizes == (SIDE, SIDE) and a[0].dtype == np.uint8
    assert not np.array_equal(a[0], c[0])
    assert gen.image_seed(42, "fixed", "x") == gen.image_seed(42, "fixed", "y") == 42
    assert (
        gen.image_seed(42, "per-report", "x")
        == gen.image_seed(42, "per-report", "x")
        != gen.image_seed(42, "per-report", "y")
    )


def test_prompts_are_cut_at_the_77_token_limit(tiny_model):
    from transformers import CLIPTokenizer

    tok = CLIPTokenizer.from_pretrained(tiny_model / "tokenizer", local_files_only=True)
    long = " ".join(["moderate bilateral pleural effusions with adjacent atelectasis."] * 20)
    prompts, truncated, counts = gen.truncate_prompts(tok, ["No acute process.", long])
    assert prompts[0] == "No acute process." and truncated == [False, True] and counts[1] > 77
    assert len(tok(prompts[1])["input_ids"]) <= 77 and long.startswith(prompts[1]) and len(prompts[1].split()) > 5
    assert len(tok(" ".join(long.split()[: len(prompts[1].split()) + 1]))["input_ids"]) > 77  # the longest that fits


def test_shard_arguments_and_launcher_ranks(monkeypatch):
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(var, raising=False)
    assert gen.effective_shard(None) == (0, 1) and gen.effective_shard("2/3") == (2, 3)
    with pytest.raises(ConfigError):
        gen.parse_shard("3/3")
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert gen.effective_shard(None) == (3, 4) and gen.effective_shard("1/2") == (7, 8)  # Slurm array x torchrun
    frame = pd.DataFrame({"i": range(10)})
    parts = [gen.shard_rows(frame, k, 3)["i"].tolist() for k in range(3)]
    assert sorted(sum(parts, [])) == list(range(10))


def test_fid_matches_the_closed_form_for_gaussians():
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    d1, d2 = np.array([1.0, 2.0, 0.5, 3.0]), np.array([2.0, 0.5, 1.5, 1.0])
    s1, s2 = q @ np.diag(d1) @ q.T, q @ np.diag(d2) @ q.T  # commuting: sqrt(S1 S2) = Q sqrt(D1 D2) Q^T
    mu1, mu2 = np.array([0.0, 1.0, -1.0, 2.0]), np.array([1.0, 1.0, 0.0, 0.0])
    by_hand = np.sum((mu1 - mu2) ** 2) + np.sum(d1 + d2 - 2 * np.sqrt(d1 * d2))
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(by_hand, rel=1e-9)
    assert frechet_distance([0.0], [[4.0]], [3.0], [[1.0]]) == pytest.approx(
        9 + 4 + 1 - 2 * 2
    )  # 1-d: (m1-m2)^2 + (s1-s2)^2
    x = rng.normal(size=(500, 3))
    assert fid(x, x) == pytest.approx(0.0, abs=1e-6) and fid(x, x + 2.0) == pytest.approx(12.0, rel=1e-6)


def test_ms_ssim_identical_images_is_one_and_noise_is_low():
    rng = np.random.default_rng(0)
    a = (rng.random((200, 200)) * 255).astype(np.uint8)
    smooth = np.add.outer(np.arange(200), np.arange(200)).astype(np.float64) / 400 * 255
    assert ms_ssim(a, a) == pytest.approx(1.0, abs=1e-9)
    assert ms_ssim(smooth, smooth) == pytest.approx(1.0, abs=1e-9)
    noise = ms_ssim(a, (rng.random((200, 200)) * 255).astype(np.uint8))
    assert 0.0 <= noise < 0.2
    assert ms_ssim(a, np.clip(a.astype(int) + 10, 0, 255)) == pytest.approx(
        ms_ssim(np.clip(a.astype(int) + 10, 0, 255), a)
    )
    assert ms_ssim_scales(200) == 5 and ms_ssim_scales(32) == 2
    with pytest.raises(ConfigError):
        ms_ssim_scales(8)


def test_quality_report_on_the_tiny_outputs(full_run, tiny_model, tmp_path):
    out, _ = full_run
    report = quality_report(
        out,
        features="random:resnet_tiny",
        image_size=32,
        model=tiny_model,
        diversity_prompts=2,
        samples_per_prompt=2,
        report_dir=tmp_path / "q",
        log=lambda *_: None,
    )
    assert np.isfinite(report["fid"]["value"]) and report["fid"]["value"] >= 0
    assert 0 <= report["ms_ssim"]["synthetic_mean"] <= 1 and report["ms_ssim"]["prompts"] == 2
    text = (tmp_path / "q" / "quality.md").read_text()
    assert "FID (random:resnet_tiny)" in text and f"{report['fid']['value']:.4f}" in text
    assert report["fid"]["preprocessing"].startswith("grey; centre crop to a square of the short side")
    assert (
        report["image_checks"]["regenerated"] == {"nonfinite": 0, "constant": 0}
        and "- image checks: regenerated once" in text
    )
    from PIL import Image

    for name in ("samples.png", "diversity.png"):
        with Image.open(tmp_path / "q" / name) as im:
            assert im.format == "PNG" and im.size[0] > 100
    with pytest.raises(ConfigError, match="weights not found"):
        quality_report(
            out, features="inception", features_weights=str(tmp_path / "none.pth"), report_dir=tmp_path / "q2"
        )


def test_cli_help_lists_every_option(capsys):
    from recipes.synthesis.cli import main

    for command in ("generate", "merge", "quality"):
        with pytest.raises(SystemExit) as exit_:
            main([command, "--help"])
        assert exit_.value.code == 0
    text = capsys.readouterr().out
    for option in (
        "--preset",
        "--steps",
        "--seed-mode",
        "--shard",
        "--dtype",
        "--limit",
        "--features",
        "--samples-per-prompt",
        "--features-trust-pickle",
    ):
        assert option in text
    assert (
        main(
            [
                "generate",
                "--data-root",
                "/nonexistent",
                "--model",
                "/nonexistent",
                "--output",
                "/tmp/x",
                "--shard",
                "5/2",
            ]
        )
        == 2
    )


def test_nan_and_constant_images_are_regenerated_once_with_the_next_seed(demo_root, tiny_model, tmp_path, monkeypatch):
    """A sampler output with NaN, or one grey level everywhere, is regenerated once with seed + 1;
    an image still bad after that retry is kept and counted. The retry is recorded per image and
    counted in SYNTHESIS.json; a rerun keeps the finished images and repeats nothing."""
    import json

    real_raw = gen.synthesize_raw
    calls = []
    pairs = pair_set(demo_root).head(LIMIT)
    once = [k for k in range(4) if (pairs.prompt == pairs.prompt.iloc[k]).sum() == 1]  # in the first batch of 4
    nan_id, flat_id = pairs.dicom_id.iloc[once[0]], pairs.dicom_id.iloc[once[1]]
    nan_start, flat_start = pairs.prompt.iloc[once[0]][:20], pairs.prompt.iloc[once[1]][:20]

    def faulty(pipe, prompts, seeds, **kw):
        out = real_raw(pipe, prompts, seeds, **kw).copy()
        for k, (prompt, seed) in enumerate(zip(prompts, seeds)):
            if prompt.startswith(nan_start) and seed == 42:
                out[k, 3:9, 3:9] = np.nan  # a diverged sampler: fixed by the retry
            if prompt.startswith(flat_start):
                out[k] = 0.5  # a flat image at every seed: still bad after the retry
        calls.append((list(prompts), list(seeds), out))
        return out

    monkeypatch.setattr(gen, "synthesize_raw", faulty)
    out = tmp_path / "synth"
    summary = generate(config(demo_root, tiny_model, out), log=lambda *_: None)
    # batches of 4: rows 0-3 at seed 42, then ONE retry call for the two bad images at seed 43, then rows 4-5
    assert [seeds for _, seeds, _ in calls] == [[42] * 4, [43, 43], [42] * 2]
    manifest = read_manifest(out).set_index("dicom_id")
    assert (manifest.loc[nan_id, "retry"], int(manifest.loc[nan_id, "image_seed"]), manifest.loc[nan_id, "bad"]) == (
        "nonfinite",
        43,
        "",
    )
    assert (manifest.loc[flat_id, "retry"], int(manifest.loc[flat_id, "image_seed"]), manifest.loc[flat_id, "bad"]) == (
        "constant",
        43,
        "constant",
    )
    others = manifest.drop(index=[nan_id, flat_id])
    assert (others.retry == "").all() and (others.bad == "").all() and (others.image_seed.astype(int) == 42).all()
    assert (manifest.seed.astype(int) == 42).all()  # the planned seed stays the run's setting
    retried = gen.to_grey(calls[1][2])[0]  # the written image is the retry's output
    assert (out / manifest.loc[nan_id, "path"]).read_bytes() == gen.jpeg_bytes(retried)
    from benchmark.images import read_grey

    flat = read_grey(out / manifest.loc[flat_id, "path"])
    assert int(flat.min()) == int(flat.max()) == 128
    checks = json.loads((out / gen.SUMMARY).read_text())["image_checks"]
    assert checks == summary["image_checks"]
    assert checks["regenerated"] == {"nonfinite": 1, "constant": 1} and checks["bad_after_retry"] == {
        "nonfinite": 0,
        "constant": 1,
    }
    calls.clear()
    again = generate(config(demo_root, tiny_model, out), log=lambda *_: None)
    assert calls == [] and again["kept"] == LIMIT and again["image_checks"] == checks


def test_duplicate_prompts_are_counted(full_run, demo_root):
    out, summary = full_run
    pairs = pair_set(demo_root).head(LIMIT)
    repeats = LIMIT - pairs.prompt.nunique()  # 1 today: "No acute cardiopulmonary process." in two studies
    same_study = LIMIT - len(pairs.drop_duplicates(["study_id", "prompt"]))
    checks = summary["image_checks"]
    assert checks["duplicate_prompt_images"] == repeats and checks["duplicate_prompt_images_same_study"] == same_study
    manifest = read_manifest(out)
    assert checks["byte_identical_images"] == LIMIT - manifest.sha256.nunique()
    assert checks["regenerated"] == {"nonfinite": 0, "constant": 0}


def test_the_synthetic_root_reads_as_a_hugging_face_imagefolder(demo_root, full_run, tmp_path, monkeypatch):
    """metadata.csv beside files/ makes the set a Hugging Face imagefolder (each image with its prompt
    and generation settings), read offline, while the MIMIC-CXR-JPG readers see the layout unchanged."""
    from PIL import Image

    from recipes.pretraining.data import synthetic_files_dir, synthetic_image_path
    from tests.offline import OFFLINE_ENV, network_refused

    for name, value in OFFLINE_ENV.items():
        monkeypatch.setenv(name, value)
    out, _ = full_run
    jpg = MimicLayout(out).jpg
    manifest = read_manifest(out).set_index("dicom_id")
    metadata = pd.read_csv(jpg / gen.IMAGEFOLDER_METADATA, dtype={"dicom_id": str}, keep_default_na=False)
    assert list(metadata.columns) == ["file_name"] + [c for c in gen.MANIFEST_COLUMNS if c != "path"]
    assert [(jpg / f).relative_to(out).as_posix() for f in metadata.file_name] == list(manifest.path)
    attempts: list = []
    with network_refused(attempts):
        import datasets

        monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True, raising=False)
        found = datasets.load_dataset("imagefolder", data_dir=str(jpg), split="train", cache_dir=str(tmp_path / "hf"))
    assert attempts == []
    assert len(found) == LIMIT and isinstance(found.features["image"], datasets.Image)
    assert sorted(str(d) for d in found["dicom_id"]) == sorted(manifest.index)  # the images only, no csv.gz
    for example in found:
        row = manifest.loc[str(example["dicom_id"])]
        with Image.open(out / row.path) as image:
            assert np.array_equal(np.asarray(example["image"]), np.asarray(image))  # the very file
        assert example["prompt"] == row.prompt and example["sha256"] == row.sha256
        settings = ("steps", "guidance", "seed", "height", "width", "scheduler", "generator", "split")
        assert [example[k] for k in settings] == [STEPS, 7.5, 42, SIDE, SIDE, "DDIMScheduler", row.generator, row.split]
    # the MIMIC-CXR-JPG layout the pretraining recipe reads is unchanged: same pairs, same image files
    files = synthetic_files_dir(out)
    for row in manifest.reset_index().itertuples():
        assert synthetic_image_path(files, row.subject_id, row.study_id, row.dicom_id) == out / row.path
    assert list(pair_set(out)["dicom_id"]) == list(manifest.index)
