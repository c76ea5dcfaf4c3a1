"""Split manifests: exact sizes, nesting, stratification, determinism, committed hashes."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmark.splits import SplitRecipe, build_manifest, manifest_bytes, read_manifest, sha256_bytes, write_manifest

ROOT = Path(__file__).resolve().parents[1]


def toy_records(n=2000, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.random((n, 3)) < [0.3, 0.05, 0.5]
    frame = pd.DataFrame({"image_id": [f"img{i:05d}" for i in range(n)], "source_split": "train"})
    for k, name in enumerate(["a", "b", "c"]):
        frame[name] = labels[:, k].astype(int)
    frame.loc[frame.index[-100:], "source_split"] = "test"
    return frame


RECIPE = SplitRecipe(val=300, test=None, stratify=("a", "b", "c"))


def test_sizes_nesting_and_disjointness():
    manifest = build_manifest(toy_records(), RECIPE, "toy")
    counts = manifest["split"].value_counts()
    assert counts["val"] == 300 and counts["test"] == 100 and counts["train"] == 1600
    assert not manifest["image_id"].duplicated().any()  # train/val/test disjoint (MGCA's overlap bug)
    train = manifest[manifest["split"] == "train"]
    for seed in RECIPE.seeds:
        sub10, sub1 = train[f"sub10_s{seed}"] == 1, train[f"sub1_s{seed}"] == 1
        assert sub10.sum() == 160 and sub1.sum() == 16
        assert (sub1 <= sub10).all()  # 1% inside 10%
        assert manifest.loc[manifest["split"] != "train", f"sub10_s{seed}"].sum() == 0
    assert not (train["sub1_s0"] == train["sub1_s1"]).all()  # seeds draw different subsets


def test_stratification_keeps_label_rates_and_rare_positives():
    records = toy_records()
    manifest = build_manifest(records, RECIPE, "toy").merge(records, on="image_id")
    train = manifest[manifest["split"] == "train"]
    for seed in RECIPE.seeds:
        sub10 = train[train[f"sub10_s{seed}"] == 1]
        assert abs(sub10["a"].mean() - train["a"].mean()) < 0.02
        sub1 = train[train[f"sub1_s{seed}"] == 1]
        assert (sub1[["a", "b", "c"]].sum() >= 1).all()  # every class has a positive at 1%


def test_multiclass_column_keeps_every_class_at_one_percent():
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"image_id": [f"x{i}" for i in range(1000)], "source_split": "train",
                          "label": rng.choice([0, 1, 2], size=1000, p=[0.9, 0.095, 0.005])})
    manifest = build_manifest(frame, SplitRecipe(val=0.2, stratify=("label",)), "mc").merge(frame, on="image_id")
    sub1 = manifest[(manifest["split"] == "train") & (manifest["sub1_s0"] == 1)]
    assert set(sub1["label"]) == {0, 1, 2}


def test_deterministic_and_order_independent(tmp_path):
    records = toy_records()
    a = build_manifest(records, RECIPE, "toy")
    b = build_manifest(records.sample(frac=1.0, random_state=3), RECIPE, "toy")
    assert manifest_bytes(a) == manifest_bytes(b)
    digest = write_manifest(a, tmp_path / "toy.csv.gz", {"dataset": "toy"})
    first = (tmp_path / "toy.csv.gz").read_bytes()
    write_manifest(b, tmp_path / "toy.csv.gz", {"dataset": "toy"})
    assert (tmp_path / "toy.csv.gz").read_bytes() == first  # gzip is byte-stable (mtime 0)
    loaded = read_manifest(tmp_path / "toy.csv.gz", "toy")
    assert loaded.sha256 == digest == sha256_bytes(manifest_bytes(a))


@pytest.mark.parametrize("dataset,expected", [
    ("rsna", {"train": 16010, "val": 5337, "test": 5337}),
    ("chexpert", {"train": 186027, "val": 5000}),
])
def test_committed_manifests_have_mgca_sizes(dataset, expected):
    manifest = read_manifest(ROOT / "tasks" / "manifests" / f"{dataset}.csv.gz", dataset)
    assert manifest.frame["split"].value_counts().to_dict() == expected
    meta = json.loads((ROOT / "tasks" / "manifests" / f"{dataset}.json").read_text())
    assert meta["sha256"] == manifest.sha256
    train = manifest.frame[manifest.frame["split"] == "train"]
    for seed in (0, 1, 2):
        assert train[f"sub10_s{seed}"].sum() == round(len(train) * 0.10)
        assert train[f"sub1_s{seed}"].sum() == round(len(train) * 0.01)
        assert ((train[f"sub1_s{seed}"] == 1) <= (train[f"sub10_s{seed}"] == 1)).all()


def test_committed_manifests_rebuild_bit_for_bit_from_torchxrayvision_label_files():
    pytest.importorskip("pandas")
    from tasks.build_manifests import SOURCES, build, txrv_data_dir

    data = txrv_data_dir()
    for dataset in SOURCES:
        manifest, _ = build(dataset, data)
        committed = read_manifest(ROOT / "tasks" / "manifests" / f"{dataset}.csv.gz", dataset)
        assert sha256_bytes(manifest_bytes(manifest)) == committed.sha256, dataset
