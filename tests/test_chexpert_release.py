"""CheXpert releases: which of CheXpert-v1.0 (full resolution, the reference's) and
CheXpert-v1.0-small is read, how to force one, and that every result records it."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest

from benchmark.cli import main
from benchmark.data_roots import DataRoots
from benchmark.datasets.chexpert import CheXpert
from benchmark.errors import DatasetNotFoundError
from benchmark.registry import all_tasks
from benchmark.splits import Manifest
from benchmark.suites import paper_suite
from benchmark.task_data import TaskData
from tests.official_layouts import write_chexpert

FULL, SMALL = "CheXpert-v1.0", "CheXpert-v1.0-small"
FULL_SHAPE, SMALL_SHAPE = (128, 96), (64, 48)  # the full release's images are the larger ones


@pytest.fixture
def both(tmp_path):
    write_chexpert(tmp_path, FULL, FULL_SHAPE)
    write_chexpert(tmp_path, SMALL, SMALL_SHAPE)
    return tmp_path


@pytest.fixture
def only_small(tmp_path):
    write_chexpert(tmp_path, SMALL, SMALL_SHAPE)
    return tmp_path


@pytest.fixture
def only_full(tmp_path):
    write_chexpert(tmp_path, FULL, FULL_SHAPE)
    return tmp_path


def locate(root, release="auto") -> CheXpert:
    return CheXpert.locate(DataRoots(root, {}, "--data-root", chexpert_release=release))


def test_auto_prefers_the_full_release_when_both_are_present(both):
    adapter = locate(both)
    assert adapter.folder == both / FULL and adapter.release() == FULL
    assert all(path.startswith(f"{both / FULL}/") for path in adapter.records["path"])


def test_auto_falls_back_to_the_small_release(only_small):
    adapter = locate(only_small)
    assert adapter.folder == only_small / SMALL and adapter.release() == SMALL


@pytest.mark.parametrize("release, folder", [("full", FULL), ("small", SMALL)])
def test_a_forced_release_is_read_when_both_are_present(both, release, folder):
    assert locate(both, release).folder == both / folder


def test_both_releases_share_one_manifest_id_space(both):
    assert locate(both, "full").records["image_id"].tolist() == locate(both, "small").records["image_id"].tolist()


@pytest.mark.parametrize(
    "release, wanted, present_fixture", [("full", FULL, "only_small"), ("small", SMALL, "only_full")]
)
def test_forcing_a_missing_release_names_the_folder_it_looked_for(request, release, wanted, present_fixture):
    root = request.getfixturevalue(present_fixture)
    roots = DataRoots(root, {}, "--data-root", chexpert_release=release)
    assert not CheXpert.is_present(roots)
    with pytest.raises(DatasetNotFoundError) as info:
        CheXpert.locate(roots)
    message = str(info.value)
    assert f"--chexpert-release {release}" in message and str(root / wanted) in message
    present = FULL if wanted == SMALL else SMALL
    assert f"holds {present}, not {wanted}" in message  # what is there instead
    assert "--chexpert-release auto" in message  # and how to read it


def test_a_renamed_folder_is_told_by_the_paths_in_its_train_csv(tmp_path):
    write_chexpert(tmp_path / "data", FULL, FULL_SHAPE)
    renamed = tmp_path / "my-chexpert"
    (tmp_path / "data" / FULL).rename(renamed)
    roots = DataRoots(None, {"chexpert": renamed}, "config", chexpert_release="full")
    assert CheXpert.locate(roots).release() == FULL
    with pytest.raises(DatasetNotFoundError, match=f"holds {FULL}, not {SMALL}"):
        CheXpert.locate(replace(roots, chexpert_release="small"))


def task_data(root, release: str) -> TaskData:
    """CheXpert task data on the fixture, split by a hand-made manifest (the committed one
    lists the real dataset's ids)."""
    adapter = locate(root, release)
    train = adapter.records.loc[adapter.records["source_split"] == "train", "image_id"].tolist()
    frame = pd.DataFrame({"image_id": train, "split": ["train", "val"]})
    suite = paper_suite(DataRoots(root, {}, "--data-root", chexpert_release=release))
    return TaskData(all_tasks()["chexpert_cls"], suite, adapter, Manifest("chexpert", frame, "0" * 64))


def test_the_data_description_of_every_result_records_the_release(both):
    for release, folder in (("auto", FULL), ("full", FULL), ("small", SMALL)):
        described = task_data(both, release).describe(100, 0)
        assert described["release"] == folder and described["dataset_folder"] == str(both / folder)


def test_the_releases_image_digests_differ_so_units_and_caches_never_mix(both):
    """The unit key (and the feature-cache key) holds the image files' content digest; the
    releases' files differ (other resolution), so their digests do."""
    full, small = task_data(both, "full"), task_data(both, "small")
    assert full.split_ids == small.split_ids  # same ids, one manifest
    assert full.content_sha256 != small.content_sha256


def test_list_tasks_follows_the_cli_option(both, capsys):
    assert main(["--list-tasks", "--data-root", str(both), "--chexpert-release", "small"]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| chexpert_cls"))
    assert f"yes ({both / SMALL})" in line
    assert main(["--list-tasks", "--data-root", str(both)]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| chexpert_cls"))
    assert f"yes ({both / FULL})" in line


def test_the_cli_stops_before_any_work_when_the_forced_release_is_missing(only_small, capsys):
    code = main(
        [
            "--encoder",
            "random:resnet_tiny",
            "--data-root",
            str(only_small),
            "--chexpert-release",
            "full",
            "--tasks",
            "chexpert_cls",
            "--cache-dir",
            str(only_small / "cache"),
            "--output",
            str(only_small / "out"),
        ]
    )
    assert code == 2
    error = capsys.readouterr().err
    assert "--chexpert-release full" in error and str(only_small / FULL) in error
    assert not (only_small / "out").exists()


def test_the_cli_refuses_an_unknown_release(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--list-tasks", "--chexpert-release", "medium"])
    assert info.value.code == 2 and "--chexpert-release" in capsys.readouterr().err
