"""``run_benchmark.py export --format hf``: every committed demo unit round-trips through ``datasets``
offline (results, per-image predictions, reported tables, the card's metadata), and the command
refuses what it must."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.offline import go_offline, network_refused

go_offline()  # nothing may reach the Hugging Face hub: before datasets / evaluate read their configuration

from benchmark.cli import main  # noqa: E402
from benchmark.export_hf import EXPORT_MARKER, export_hf, flat_metrics, predictions_frame  # noqa: E402
from benchmark.submissions import SUBMISSIONS_DIR, list_submissions, validate_submission  # noqa: E402


def demo_submissions() -> list[str]:
    """The committed submissions with demo results (demo-random-init, demo-convirt-real, ...)."""
    names = [f.name for f in list_submissions(SUBMISSIONS_DIR) if (f / "results" / "demo").is_dir()]
    assert {"demo-random-init", "demo-convirt-real", "demo-convirt-tinysd"} <= set(names)
    return names


def committed_units():
    """(submission, result dict, predictions path) of every committed demo unit."""
    for name in demo_submissions():
        for path in sorted((SUBMISSIONS_DIR / name / "results" / "demo").glob("*/*.json")):
            result = json.loads(path.read_text())
            yield name, result, path.with_name(result["predictions_file"])


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The committed submissions exported, then read back with ``datasets.load_dataset`` offline."""
    out = tmp_path_factory.mktemp("export") / "medvlp-results"
    cache = tmp_path_factory.mktemp("hf-cache")
    attempts: list = []
    with network_refused(attempts):
        summary = export_hf(out, SUBMISSIONS_DIR, ("demo",))
        from datasets import load_dataset

        loaded = {
            "results": load_dataset(str(out), cache_dir=str(cache)),  # the default config
            "predictions": load_dataset(str(out), "predictions", cache_dir=str(cache)),
            "reported": load_dataset(str(out), "reported", cache_dir=str(cache)),
        }
    assert attempts == [], f"the export or load_dataset tried the network: {attempts}"
    return out, summary, loaded


def test_results_round_trip_every_metric_of_every_unit(exported):
    out, summary, loaded = exported
    assert list(loaded["results"]) == ["demo"]  # one split per suite
    frame = loaded["results"]["demo"].to_pandas()
    units = list(committed_units())
    assert summary.units == len(units) == frame["unit"].groupby(frame["submission"]).nunique().sum()
    problems = {name: validate_submission(SUBMISSIONS_DIR / name, ("demo",)) for name in demo_submissions()}
    assert problems["demo-random-init"] == []  # the leaderboard shows it
    expected_rows = 0
    for submission, result, predictions in units:
        rows = frame[
            (frame.submission == submission)
            & (frame.task == result["unit"]["task"])
            & (frame.fraction == result["unit"]["fraction"])
            & (frame.seed == result["unit"]["seed"])
        ]
        flat = flat_metrics(result["metrics"])
        expected_rows += len(flat)
        assert list(rows.metric) == [name for name, _ in flat]
        for (name, value), got in zip(flat, rows.value):
            assert (got is None or math.isnan(got)) if value is None else got == value, (submission, name)
        headline = rows[rows.headline]
        assert list(headline.metric) == [result["metric"]] and headline.value.iloc[0] == result["value"]
        first = rows.iloc[0]
        assert first.checkpoint_sha256 == result["encoder"]["sha256"]
        assert first.encoder_spec == result["encoder"]["spec"] and first.encoder_arch == result["encoder"]["arch"]
        assert first.manifest_sha256 == result["data"]["manifest_sha256"]
        assert first.test_ids_sha256 == result["data"]["test_ids_sha256"]
        assert first.harness_version == result["provenance"]["harness_version"] == "0.1.0"
        assert first.git_commit == result["provenance"]["git"]["commit"]
        assert first.protocol_version == (result.get("protocol_version") or 1) and first.protocol_current
        for column, recorded in (
            ("n_test", result["data"]["n_test"]),
            ("best_epoch", result["training"].get("best_epoch")),
        ):
            assert pd.isna(first[column]) if recorded is None else first[column] == recorded, column  # zero-shot: none
        assert first.predictions_sha256 == hashlib.sha256(predictions.read_bytes()).hexdigest()
        metadata = yaml.safe_load((SUBMISSIONS_DIR / submission / "submission.yaml").read_text())
        assert first.method == metadata["method"] and first.licence == metadata["licence"]
        assert first.checkpoint_url == metadata["checkpoint"]["url"]
        assert metadata["checkpoint"]["sha256"] == first.checkpoint_sha256
        assert first.pretraining_images == metadata["pretraining"]["images"]
        assert bool(first.baseline) == metadata["baseline"]
        assert list(first.validation_problems) == problems[submission]
        assert first.submission_valid == (problems[submission] == [])
    assert len(frame) == expected_rows == summary.rows["results"]


def test_both_rules_are_labelled_and_match_the_leaderboards_recomputation(exported):
    _, _, loaded = exported
    frame = loaded["results"]["demo"].to_pandas()
    ranked = frame[frame.ranking != ""]
    seg = ranked[ranked.task == "siim_seg"]
    assert set(zip(seg.metric, seg.ranking)) == {("dice", "reference"), ("dice_positive", "sound")}
    det = ranked[ranked.task == "rsna_det"]
    assert set(zip(det.metric, det.ranking)) == {("map_reference", "reference"), ("map", "sound")}
    cls = ranked[ranked.task == "covidx_cls"]
    assert set(zip(cls.metric, cls.ranking)) == {("accuracy", "reference+sound")}
    assert {"specificity", "floors.predict_nothing.dice", "reference.map", "ap@0.40"} <= set(frame.metric)
    # the leaderboard's recomputation from the predictions files agrees with every recorded value
    recomputed = frame[frame.recomputed_value.notna()]
    assert set(recomputed.metric) >= {"auc", "accuracy", "dice", "dice_positive", "specificity", "map", "map_reference"}
    assert ((recomputed.value - recomputed.recomputed_value).abs() < 1e-6).all()
    assert frame[(frame.ranking != "") & frame.submission_valid].recomputed_value.notna().all()


def test_predictions_round_trip_to_the_original_files(exported):
    _, summary, loaded = exported
    predictions = loaded["predictions"]["demo"].to_pandas()
    assert len(predictions) == summary.rows["predictions"]
    assert not predictions.duplicated(["submission", "unit", "image_id"]).any()  # one row per image
    for submission, result, path in committed_units():
        unit = f"{result['unit']['task']}_frac{result['unit']['fraction']}_seed{result['unit']['seed']}"
        original = pd.read_csv(path, dtype={"image_id": str})
        rebuilt = predictions_frame(predictions, submission, unit, suite="demo")
        pd.testing.assert_frame_equal(rebuilt, original, check_dtype=False, check_exact=True)
        rows = predictions[(predictions.submission == submission) & (predictions.unit == unit)]
        assert len(rows) == original["image_id"].nunique()
    detection = predictions[predictions.family == "detection"].iloc[0]
    assert detection["kind"][0] == "image" and detection["prob:Pneumonia"] is None  # a column of other files: null
    with pytest.raises(KeyError, match="no predictions"):
        predictions_frame(predictions, "demo-random-init", "rsna_cls_frac5_seed0")


def test_reported_config_and_the_card(exported):
    out, summary, loaded = exported
    reported = loaded["reported"]["paper"].to_pandas()
    source = pd.read_csv(
        Path(__file__).resolve().parents[1] / "benchmark" / "data" / "paper_tables.csv", keep_default_na=False
    )
    assert len(reported) == len(source) == summary.rows["reported"]
    mgca = reported[
        (reported.method == "mgca") & (reported.dataset == "chexpert") & (reported.pretraining_images == "real")
    ]
    expected = source[
        (source.method == "mgca") & (source.dataset == "chexpert") & (source.pretraining_images == "real")
    ]
    assert list(mgca.value) == [float(v) for v in expected.value]
    assert reported.value.isna().sum() == (source.value == "").sum() > 0  # printed '-': null, not 0
    from huggingface_hub import DatasetCard

    card = DatasetCard.load(out / "README.md")
    assert card.data.license == "apache-2.0"
    configs = {c["config_name"]: c for c in card.data.configs}
    assert set(configs) == {"results", "predictions", "reported"} and configs["results"]["default"]
    assert configs["predictions"]["data_files"] == [{"split": "demo", "path": "data/predictions-demo.parquet"}]
    infos = {info["config_name"]: info for info in card.data.dataset_info}
    names = [f["name"] for f in infos["results"]["features"]]
    assert names == list(loaded["results"]["demo"].features)
    assert infos["results"]["splits"] == [{"name": "demo", "num_bytes": infos["results"]["splits"][0]["num_bytes"],
                                            "num_examples": summary.rows["results"]}]  # fmt: skip
    text = card.text
    assert EXPORT_MARKER in text and "arXiv:2310.07027" in text and "SMOKE" in text
    assert all(f"`{name}`" in text for name in names)  # every column is described


def test_cli_export_refusals_and_an_invalid_submission(tmp_path, capsys):
    submissions = tmp_path / "submissions"
    copy = submissions / "demo-random-init"
    shutil.copytree(SUBMISSIONS_DIR / "demo-random-init", copy, ignore=shutil.ignore_patterns("*_det", "*_seg"))
    unit = copy / "results" / "demo" / "rsna_cls" / "rsna_cls_frac10_seed0.json"
    data = json.loads(unit.read_text())
    data["value"] = data["metrics"]["auc"] = 0.99  # a value its predictions do not support
    unit.write_text(json.dumps(data))
    (copy / "results" / "demo" / "covidx_cls" / "covidx_cls_frac1_seed0.predictions.csv.gz").unlink()
    out = tmp_path / "export"
    args = ["export", "--format", "hf", str(out), "--submissions-dir", str(submissions)]
    attempts: list = []
    with network_refused(attempts):
        assert main(args) == 0
        printed = capsys.readouterr().out
        assert "9 units of 1 submission(s)" in printed and "does not validate" in printed
        assert "demo/demo-random-init/covidx_cls_frac1_seed0: no readable predictions file" in printed
        from datasets import load_dataset

        frame = load_dataset(str(out), cache_dir=str(tmp_path / "cache"))["demo"].to_pandas()
    assert attempts == []
    edited = frame[(frame.unit == "rsna_cls_frac10_seed0") & (frame.metric == "auc")].iloc[0]
    assert edited.value == 0.99 and pd.isna(edited.recomputed_value) and not edited.submission_valid
    problems = list(edited.validation_problems)
    assert any("rsna_cls_frac10_seed0" in p for p in problems)
    assert any("missing unit" in p for p in problems)  # the segmentation and detection units were not copied
    assert frame[frame.unit == "covidx_cls_frac1_seed0"].predictions_sha256.isna().all()

    assert main(args) == 2 and "--overwrite" in capsys.readouterr().err  # an earlier export is not replaced silently
    assert main(args + ["--overwrite"]) == 0
    capsys.readouterr()
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    assert main(["export", "--format", "hf", str(foreign), "--submissions-dir", str(submissions)]) == 2
    assert "not empty" in capsys.readouterr().err and (foreign / "notes.txt").read_text() == "mine"
    assert main(args + ["--overwrite", "--suite", "paper"]) == 2
    assert "suites with results: demo" in capsys.readouterr().err
    assert (out / "README.md").is_file()  # the refused run left the earlier export in place
    assert main(["export", "--format", "hf", str(tmp_path / "x"), "--submissions-dir", str(tmp_path / "none")]) == 2
    assert "no such folder" in capsys.readouterr().err
