"""Protocol versions: every result records its family's version; validation names results of
an older version, the leaderboard leaves them out with a note, and the runner never reuses them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from benchmark.cli import main
from benchmark.families import FAMILIES
from benchmark.leaderboard import render_suite
from benchmark.protocol_versions import PROTOCOL_VERSIONS, current_version, result_version, version_problem
from benchmark.results import SCHEMA_VERSION, read_result
from benchmark.submissions import validate_submission
from tests.test_board import fill

NAME = "tiny"
SEG_UNIT = Path("results/demo/siim_seg/siim_seg_frac100_seed0.json")
CLS_UNIT = Path("results/demo/rsna_cls/rsna_cls_frac100_seed0.json")


def run_args(demo_root: Path, cache: Path) -> list[str]:
    return [
        "--seg-max-epochs",
        "1",
        "--encoder",
        "random:resnet_tiny",
        "--suite",
        "demo",
        "--demo-root",
        str(demo_root),
        "--cache-dir",
        str(cache),
        "--tasks",
        "siim_seg,rsna_cls",
        "--fractions",
        "100",
        "--no-progress",
        "--workers",
        "0",
    ]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("protocol-cache")


@pytest.fixture(scope="module")
def submissions(demo_root, cache, tmp_path_factory):
    """One submission holding a segmentation and a classification unit of today's protocol
    (the segmentation head trains one epoch: the numbers do not matter here)."""
    root = tmp_path_factory.mktemp("protocol-submissions")
    assert main(run_args(demo_root, cache) + ["--submission", NAME, "--submissions-dir", str(root)]) == 0
    fill(root / NAME, "tiny", "real")
    return root


def edit_result(path: Path, version) -> None:
    """Make a result look like one of protocol ``version`` (``"missing"``: a file written
    before versions were recorded, schema 1, without the field)."""
    data = json.loads(path.read_text())
    if version == "missing":
        data.pop("protocol_version", None)
        data["schema_version"] = 1
    else:
        data["protocol_version"] = version
    path.write_text(json.dumps(data))


def copy_with(submissions: Path, tmp_path: Path, edits: dict[Path, object]) -> Path:
    root = tmp_path / "subs"
    shutil.copytree(submissions, root)
    for unit, version in edits.items():
        edit_result(root / NAME / unit, version)
    return root


def board(root: Path, tmp_path: Path) -> tuple[Path, list[str]]:
    skipped: list[str] = []
    render_suite("demo", root, tmp_path / "board", skipped, require_complete=False)
    return tmp_path / "board" / "demo", skipped


def tiny_rows(page: str) -> list[str]:
    return [line for line in page.splitlines() if line.startswith("| Tiny")]


def tiny_values(page: str) -> list[str]:
    """The measured cells of the submission's rows (a row without results there shows only –)."""
    return [cell.strip() for line in tiny_rows(page) for cell in line.strip("|").split("|")[2:] if cell.strip() != "–"]


def test_every_family_has_a_protocol_version():
    assert set(PROTOCOL_VERSIONS) == set(FAMILIES)
    assert PROTOCOL_VERSIONS == {"classification": 1, "zeroshot": 1, "segmentation": 2, "detection": 2}


def test_new_results_record_their_family_version(submissions):
    segmentation = read_result(submissions / NAME / SEG_UNIT)
    classification = read_result(submissions / NAME / CLS_UNIT)
    assert segmentation.protocol_version == current_version("segmentation") == 2
    assert classification.protocol_version == current_version("classification") == 1
    assert segmentation.schema_version == classification.schema_version == SCHEMA_VERSION == 3


def test_current_results_are_accepted_and_shown(submissions, tmp_path):
    assert validate_submission(submissions / NAME, ("demo",), require_complete=False) == []
    folder, skipped = board(submissions, tmp_path)
    assert skipped == []
    for family in ("segmentation", "classification"):
        page = (folder / f"{family}.md").read_text()
        assert tiny_values(page) and "Left out" not in page, family


@pytest.mark.parametrize("version", ["missing", 1])
def test_an_old_segmentation_result_is_named_by_the_validator(submissions, tmp_path, version):
    root = copy_with(submissions, tmp_path, {SEG_UNIT: version})
    assert result_version(read_result(root / NAME / SEG_UNIT)) == 1
    problems = validate_submission(root / NAME, ("demo",), require_complete=False)
    assert len(problems) == 1, problems
    assert problems[0].startswith(
        "demo/siim_seg/siim_seg_frac100_seed0: produced under segmentation protocol v1, current v2 ("
    )
    assert "stretch resize" in problems[0] and problems[0].endswith("; rerun the unit")


@pytest.mark.parametrize("version", ["missing", 1])
def test_the_leaderboard_leaves_an_old_segmentation_result_out_with_a_note(submissions, tmp_path, version):
    root = copy_with(submissions, tmp_path, {SEG_UNIT: version})
    folder, skipped = board(root, tmp_path)
    segmentation = (folder / "segmentation.md").read_text()
    tables, note = segmentation.split("## Left out: results of another segmentation protocol version")
    assert not tiny_values(tables)  # never mixed with current results
    assert f"- `{NAME}`: 1 unit(s) produced under segmentation protocol v1, current v2 (" in note
    assert note.rstrip().endswith("siim_seg 100% seed 0")
    # the submission's current results stay on the board
    assert len(tiny_rows((folder / "classification.md").read_text())) == 1
    # and the left-out units are named on the index page and in what the command prints
    not_shown = (folder / "README.md").read_text().split("## Not shown")[1]
    assert f"{NAME}: 1 segmentation unit(s) left out of the tables" in not_shown and "segmentation.md" in not_shown
    assert len(skipped) == 1 and skipped[0].startswith(f"demo: {NAME}: 1 segmentation unit(s) left out")


def test_unversioned_classification_results_are_current(submissions, tmp_path):
    root = copy_with(submissions, tmp_path, {CLS_UNIT: "missing"})
    result = read_result(root / NAME / CLS_UNIT)
    assert result.protocol_version is None and result_version(result) == 1
    assert version_problem("x", result) is None
    assert validate_submission(root / NAME, ("demo",), require_complete=False) == []
    folder, skipped = board(root, tmp_path)
    assert skipped == [] and len(tiny_rows((folder / "classification.md").read_text())) == 1


def test_a_result_of_a_newer_protocol_is_named_too(submissions, tmp_path):
    root = copy_with(submissions, tmp_path, {SEG_UNIT: 3})
    (problem,) = validate_submission(root / NAME, ("demo",), require_complete=False)
    assert "segmentation protocol v3, newer than this harness's v2" in problem
    folder, _ = board(root, tmp_path)
    assert not tiny_values((folder / "segmentation.md").read_text().split("## Left out")[0])


def test_the_runner_never_reuses_a_unit_of_an_older_protocol(
    submissions, demo_root, cache, tmp_path, monkeypatch, capsys
):
    output = tmp_path / "out"
    shutil.copytree(submissions / NAME / "results" / "demo", output)
    args = run_args(demo_root, cache) + ["--output", str(output)]
    assert main(args) == 0  # today's units: reused
    assert "2 of 2 units already finished" in capsys.readouterr().out

    edit_result(output / "siim_seg" / "siim_seg_frac100_seed0.json", 1)  # same unit key, older protocol
    assert main(args) == 2
    error = capsys.readouterr().err
    assert "siim_seg_frac100_seed0.json: produced under segmentation protocol v1, current v2" in error
    assert "--overwrite" in error
    assert main(args + ["--overwrite"]) == 0
    assert read_result(output / "siim_seg" / "siim_seg_frac100_seed0.json").protocol_version == 2
