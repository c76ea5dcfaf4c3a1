"""Submissions, validation and leaderboards on the demo suite."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from benchmark.cli import main
from benchmark.leaderboard import LEADERBOARDS, REFERENCE_CSV, render_all, render_suite
from benchmark.submissions import SUBMISSIONS_DIR, validate_submission

TASKS = "rsna_cls,covidx_cls"


def fill(folder: Path, method_id: str, images: str, generator=None) -> None:
    path = folder / "submission.yaml"
    meta = yaml.safe_load(path.read_text())
    meta.update(
        method="Tiny",
        method_id=method_id,
        paper="n/a",
        code="https://example.org/code",
        licence="CC-BY-4.0",
        contact="someone@example.org",
        pretraining={
            "images": images,
            "generator": generator,
            "reports": "mimic-cxr",
            "mix_ratio": None,
            "dataset": "demo",
        },
    )
    path.write_text(yaml.safe_dump(meta, sort_keys=False))


@pytest.fixture(scope="module")
def two_submissions(demo_root, tmp_path_factory):
    root = tmp_path_factory.mktemp("submissions")
    cache = tmp_path_factory.mktemp("board-cache")
    for name, spec in (("tiny-real", "random:resnet_tiny"), ("tiny-sd", "random:resnet_tiny@1")):
        assert (
            main(
                [
                    "--encoder",
                    spec,
                    "--suite",
                    "demo",
                    "--demo-root",
                    str(demo_root),
                    "--cache-dir",
                    str(cache),
                    "--submission",
                    name,
                    "--submissions-dir",
                    str(root),
                    "--tasks",
                    TASKS,
                    "--no-progress",
                    "--workers",
                    "0",
                ]
            )
            == 0
        )
    fill(root / "tiny-real", "tiny", "real")
    fill(root / "tiny-sd", "tiny", "synthetic", "sd21")
    return root


def test_two_submissions_render_with_cis_and_deltas_byte_identically(two_submissions, tmp_path):
    first = render_suite("demo", two_submissions, tmp_path / "a", require_complete=False)
    second = render_suite("demo", two_submissions, tmp_path / "b", require_complete=False)
    for a, b in zip(first, second):
        assert a.read_bytes() == b.read_bytes(), a.name
    table = (tmp_path / "a" / "demo" / "classification.md").read_text()
    assert "SMOKE SUITE" in table
    rows = [line for line in table.splitlines() if line.startswith("| Tiny")]
    assert len(rows) == 2
    assert re.search(r"\d+\.\d(\*\*|†)? \[\d+\.\d, \d+\.\d\]", rows[0])  # mean [95% interval]
    assert "SD 2.1" in rows[1] and re.search(r"[▲▼=]\d+\.\d", rows[1])  # delta to the real row
    assert table.count("**") >= 2  # best per column in bold
    assert (tmp_path / "a" / "demo" / "plots" / "rsna_cls.png").read_bytes()[:4] == b"\x89PNG"
    assert "mean 100%" in (tmp_path / "a" / "demo" / "README.md").read_text()


def test_validation_names_missing_units_bad_sha_and_stale_manifest(two_submissions, tmp_path):
    folder = tmp_path / "tiny-real"
    shutil.copytree(two_submissions / "tiny-real", folder)
    problems = validate_submission(folder)
    assert any("missing unit" in p and "chexpert_cls 1% seed 0" in p for p in problems)
    # a bad sha256
    meta = yaml.safe_load((folder / "submission.yaml").read_text())
    meta["checkpoint"]["sha256"] = "abc"
    (folder / "submission.yaml").write_text(yaml.safe_dump(meta))
    assert any("checkpoint.sha256" in p and "64 lower-case hex" in p for p in validate_submission(folder))
    meta["checkpoint"]["sha256"] = "0" * 64
    (folder / "submission.yaml").write_text(yaml.safe_dump(meta))
    assert any("differs from the declared 000000000000" in p for p in validate_submission(folder))
    # a stale manifest hash on the paper suite
    source = next((folder / "results" / "demo" / "rsna_cls").glob("*.json"))
    data = json.loads(source.read_text())
    data["suite"] = "paper"
    data["data"]["manifest_sha256"] = "f" * 64
    target = folder / "results" / "paper" / "rsna_cls" / source.name
    target.parent.mkdir(parents=True)
    target.write_text(json.dumps(data))
    assert any("no longer matches the current rsna manifest" in p for p in validate_submission(folder))
    # --limit results are refused
    data["flags"]["limit"] = 5
    target.write_text(json.dumps(data))
    assert any("--limit 5" in p for p in validate_submission(folder))


def test_validate_submission_cli_exit_codes(two_submissions, capsys):
    assert main(["validate-submission", str(two_submissions / "tiny-real")]) == 1
    out = capsys.readouterr().out
    assert "problem(s)" in out and "missing unit" in out


def test_incomplete_metadata_is_reported(two_submissions, tmp_path):
    folder = tmp_path / "x"
    shutil.copytree(two_submissions / "tiny-real", folder)
    meta = yaml.safe_load((folder / "submission.yaml").read_text())
    meta["licence"] = "TODO"
    meta["name"] = "x"
    (folder / "submission.yaml").write_text(yaml.safe_dump(meta))
    assert any(p.startswith("submission.yaml: licence") for p in validate_submission(folder))


def test_reported_rows_reproduce_paper_tables_exactly(tmp_path):
    render_suite("paper", tmp_path / "no-submissions", tmp_path)
    reference = pd.read_csv(REFERENCE_CSV, dtype=str, keep_default_na=False)
    found = {}
    for family in ("classification", "segmentation", "detection"):
        path = tmp_path / "paper" / f"{family}.md"
        if not path.is_file():
            continue
        lines = path.read_text().split("## Reported")[1].splitlines()
        header = next(line for line in lines if line.startswith("| Method"))
        columns = [c.strip() for c in header.strip("|").split("|")]
        for line in lines:
            if "(reported)" not in line:
                continue
            cells = [c.strip() for c in line.strip("|").split("|")]
            for column, cell in zip(columns[2:], cells[2:]):
                value = re.match(r"_([0-9.]+)_", cell)
                found[(family, cells[0], cells[1], column)] = value.group(1) if value else ""
    from benchmark.leaderboard import DATASET_TITLES, GENERATOR_TITLES, METHOD_TITLES, REFERENCE_DATASET

    checked = 0
    for row in reference.itertuples(index=False):
        dataset = REFERENCE_DATASET.get(row.dataset, row.dataset)
        key = (
            row.task,
            f"{METHOD_TITLES[row.method]} (reported)",
            GENERATOR_TITLES[row.pretraining_images],
            f"{DATASET_TITLES[dataset]} {row.fraction}%",
        )
        if key in found:
            assert found[key] == row.value, key
            checked += 1
    from benchmark.registry import all_tasks

    families = {t.family for t in all_tasks().values()}
    assert checked == int(reference["task"].isin(families).sum()) and checked >= 99


def test_committed_leaderboards_match_the_results(tmp_path):
    written = render_all(SUBMISSIONS_DIR, tmp_path)
    for path in written:
        if path.suffix != ".md":
            continue
        committed = LEADERBOARDS / path.relative_to(tmp_path)
        assert committed.is_file(), f"{committed} is not committed: run `run_benchmark.py leaderboard`"
        assert committed.read_text() == path.read_text(), (
            f"{committed} differs from the results: run `run_benchmark.py leaderboard`"
        )


def test_an_edited_result_value_keeps_the_submission_off_the_board(two_submissions, tmp_path):
    root = tmp_path / "subs"
    shutil.copytree(two_submissions, root)
    source = sorted((root / "tiny-real" / "results" / "demo" / "rsna_cls").glob("*.json"))[0]
    data = json.loads(source.read_text())
    data["value"] = 0.70
    source.write_text(json.dumps(data))
    skipped: list[str] = []
    render_suite("demo", root, tmp_path / "board", skipped, require_complete=False)
    assert (
        len(skipped) == 1
        and source.name in skipped[0]
        and "disagrees with" in skipped[0]
        and "recomputed from" in skipped[0]
    )
    assert any(source.name in p and "disagrees with" in p for p in validate_submission(root / "tiny-real"))
    table = (tmp_path / "board" / "demo" / "classification.md").read_text()
    assert "70.0" not in table and len([line for line in table.splitlines() if line.startswith("| Tiny")]) == 1
    assert "tiny-real" in (tmp_path / "board" / "demo" / "README.md").read_text().split("## Not shown")[1]


def test_missing_predictions_keep_the_submission_off_the_board(two_submissions, tmp_path):
    root = tmp_path / "subs"
    shutil.copytree(two_submissions, root)
    victim = sorted((root / "tiny-sd" / "results" / "demo" / "covidx_cls").glob("*.predictions.csv.gz"))[0]
    victim.unlink()
    skipped: list[str] = []
    render_suite("demo", root, tmp_path / "board", skipped, require_complete=False)
    assert len(skipped) == 1 and victim.name in skipped[0] and "missing" in skipped[0]


def test_incomplete_submissions_are_not_rendered_by_default(two_submissions, tmp_path):
    skipped: list[str] = []
    render_suite("demo", two_submissions, tmp_path / "board", skipped)
    assert len(skipped) == 2 and all("missing unit" in line for line in skipped)
    assert "_No submissions yet._" in (tmp_path / "board" / "demo" / "classification.md").read_text()


def attack(two_submissions, tmp_path, edit) -> tuple[Path, list[str], list[str]]:
    """Copy the submissions, apply ``edit(folder)`` to tiny-real, return (folder, its validation
    problems, what the leaderboard left out)."""
    root = tmp_path / "subs"
    shutil.copytree(two_submissions, root)
    folder = root / "tiny-real"
    edit(folder)
    skipped: list[str] = []
    render_suite("demo", root, tmp_path / "board", skipped, require_complete=False)
    return folder, validate_submission(folder, ("demo",), require_complete=False), skipped


def test_an_extra_seed_is_refused(two_submissions, tmp_path):
    def extra_seed(folder):
        for path in (folder / "results" / "demo" / "rsna_cls").glob("rsna_cls_frac100_seed0.*"):
            shutil.copy(path, path.with_name(path.name.replace("seed0", "seed7")))
        target = folder / "results" / "demo" / "rsna_cls" / "rsna_cls_frac100_seed7.json"
        data = json.loads(target.read_text())
        data["unit"]["seed"] = 7
        data["predictions_file"] = "rsna_cls_frac100_seed7.predictions.csv.gz"
        target.write_text(json.dumps(data))

    _, problems, skipped = attack(two_submissions, tmp_path, extra_seed)
    assert any("unexpected unit" in p and "rsna_cls 100% seed 7" in p for p in problems)
    assert len(skipped) == 1 and "tiny-real" in skipped[0] and "unexpected unit" in skipped[0]


def test_demo_results_filed_as_paper_results_are_refused(two_submissions, tmp_path):
    def as_paper(folder):
        shutil.copytree(folder / "results" / "demo", folder / "results" / "paper")

    root_problems = attack(two_submissions, tmp_path, as_paper)[0]
    problems = validate_submission(root_problems, ("paper",), require_complete=False)
    assert any("produced on the 'demo' suite, filed under 'paper'" in p for p in problems)
    skipped: list[str] = []
    render_suite("paper", root_problems.parent, tmp_path / "paper-board", skipped, require_complete=False)
    assert any("tiny-real" in line and "filed under 'paper'" in line for line in skipped)
    assert "| Tiny" not in (tmp_path / "paper-board" / "paper" / "classification.md").read_text()


@pytest.mark.parametrize("how", ["duplicated", "renamed"])
def test_duplicated_or_renamed_prediction_ids_are_refused(two_submissions, tmp_path, how):
    def tamper(folder):
        path = sorted((folder / "results" / "demo" / "covidx_cls").glob("*.predictions.csv.gz"))[0]
        table = pd.read_csv(path, dtype={"image_id": str})
        if how == "duplicated":
            table.loc[1, "image_id"] = table.loc[0, "image_id"]
        else:
            table["image_id"] = "x" + table["image_id"]
        table.to_csv(path, index=False, compression="gzip")

    _, problems, skipped = attack(two_submissions, tmp_path, tamper)
    expected = "more than once" if how == "duplicated" else "not the test images the result records"
    assert any(expected in p and ".predictions.csv.gz" in p for p in problems), problems
    assert len(skipped) == 1 and expected in skipped[0]


def test_paper_segmentation_board_shows_both_rules_and_the_trivial_heads(tmp_path):
    render_suite("paper", tmp_path / "no-submissions", tmp_path)
    page = (tmp_path / "paper" / "segmentation.md").read_text()
    reference, sound = page.split("## Sound metrics")
    nothing = next(line for line in reference.splitlines() if line.startswith("| _Predict nothing_"))
    assert [c.strip() for c in nothing.strip("|").split("|")][2:8] == ["_77.5_"] * 3 + ["_77.9_"] * 3  # RSNA, SIIM
    assert "Reported by Liu et al." in reference and "Predict everything" in reference
    nothing = next(line for line in sound.splitlines() if line.startswith("| _Predict nothing_"))
    assert nothing.count("_0.0_ · spec 100.0") == 6
    assert "Why two tables" in page and "Why two tables" in (tmp_path / "paper" / "README.md").read_text()
    detection = (tmp_path / "paper" / "detection.md").read_text()
    assert "## Reference rule" in detection and "## Sound metrics" in detection


def test_a_leaderboard_that_fails_part_way_leaves_the_old_one_untouched(tmp_path, monkeypatch):
    from benchmark import leaderboard

    out = tmp_path / "boards"
    render_all(tmp_path / "no-submissions", out, suites=("paper",))
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert before

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(leaderboard, "family_page", broken)
    with pytest.raises(RuntimeError):
        render_all(tmp_path / "no-submissions", out, suites=("paper",))
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["boards"]  # no staging folder left behind


@pytest.mark.parametrize("how", ["one_fraction", "every_fraction"])
def test_rewritten_targets_are_refused(two_submissions, tmp_path, how):
    from benchmark.registry import all_tasks
    from benchmark.scoring import unit_scores

    def rewrite(folder):
        paths = sorted((folder / "results" / "demo" / "rsna_cls").glob("*.predictions.csv.gz"))
        for path in paths[:1] if how == "one_fraction" else paths:
            table = pd.read_csv(path, dtype={"image_id": str})
            target = next(c for c in table.columns if c.startswith("target:"))
            table = table.sort_values("image_id").reset_index(drop=True)
            table.loc[:4, target] = 1 - table.loc[:4, target]  # five labels flipped
            table.to_csv(path, index=False, compression="gzip")
            result_path = path.with_name(path.name.replace(".predictions.csv.gz", ".json"))
            data = json.loads(result_path.read_text())
            data["value"] = unit_scores(all_tasks()["rsna_cls"], table).value("auc")  # the JSON made to agree
            result_path.write_text(json.dumps(data))

    _, problems, skipped = attack(two_submissions, tmp_path, rewrite)
    if how == "one_fraction":  # its own label fractions disagree on one test set
        assert (
            len(skipped) == 1
            and "tiny-real" in skipped[0]
            and "label fractions" in skipped[0]
            and "rewritten targets" in skipped[0]
        )
    else:  # consistent inside the submission, but two submissions disagree and neither is the majority: both go
        assert len(skipped) == 2 and all(
            "rsna_cls ground truth" in line and "rewritten targets" in line for line in skipped
        )


def test_paper_results_must_be_tested_on_the_committed_test_ids(two_submissions, tmp_path):
    """A result filed as paper-suite RSNA whose ids (and recorded id hash) are self-consistent
    but are not the committed manifest's 5,337 test images is refused."""
    from benchmark.splits import ids_hash

    folder = tmp_path / "tiny-real"
    shutil.copytree(two_submissions / "tiny-real", folder)
    source_dir = folder / "results" / "demo" / "rsna_cls"
    target_dir = folder / "results" / "paper" / "rsna_cls"
    target_dir.mkdir(parents=True)
    for path in source_dir.glob("rsna_cls_frac100_seed0.*"):
        shutil.copy(path, target_dir / path.name)
    target = target_dir / "rsna_cls_frac100_seed0.json"
    data = json.loads(target.read_text())
    table = pd.read_csv(target_dir / data["predictions_file"], dtype={"image_id": str})
    data["suite"] = "paper"
    data["data"]["test_ids_sha256"] = ids_hash(table["image_id"].tolist())
    target.write_text(json.dumps(data))
    problems = validate_submission(folder, ("paper",), require_complete=False)
    assert any("not the paper suite's rsna test images" in p and data["predictions_file"] in p for p in problems), (
        problems
    )
