"""Split manifests: exact sizes, nesting, stratification, determinism, committed hashes,
SIIM's balanced training sets and CheXpert's patient-disjoint validation split."""

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmark.splits import (
    SplitRecipe,
    balanced_set,
    build_manifest,
    draw_val,
    group_pick,
    manifest_bytes,
    read_manifest,
    sha256_bytes,
    write_manifest,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def real_builds():
    """Manifests rebuilt from torchxrayvision's real label files, built once per module
    (CheXpert's 191k frontal rows take the longest): {dataset: (records, manifest, meta)}."""
    from tasks.build_manifests import SOURCES, build, txrv_data_dir

    data = txrv_data_dir()
    cache = {}

    def get(dataset):
        if dataset not in cache:
            manifest, meta, _ = build(dataset, data)
            cache[dataset] = (SOURCES[dataset][0](data), manifest, meta)
        return cache[dataset]

    return get


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
    frame = pd.DataFrame(
        {
            "image_id": [f"x{i}" for i in range(1000)],
            "source_split": "train",
            "label": rng.choice([0, 1, 2], size=1000, p=[0.9, 0.095, 0.005]),
        }
    )
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


@pytest.mark.parametrize(
    "dataset,expected",
    [
        ("rsna", {"train": 16010, "val": 5337, "test": 5337}),
        ("chexpert", {"train": 186027, "val": 5000}),
    ],
)
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


def test_committed_manifests_rebuild_bit_for_bit_from_torchxrayvision_label_files(real_builds):
    from tasks.build_manifests import SOURCES

    for dataset in SOURCES:
        _, manifest, _ = real_builds(dataset)
        committed = read_manifest(ROOT / "tasks" / "manifests" / f"{dataset}.csv.gz", dataset)
        assert sha256_bytes(manifest_bytes(manifest)) == committed.sha256, dataset


def test_build_manifests_check_passes(capsys):
    from tasks.build_manifests import main

    assert main(["--check", "--datasets", "rsna,siim"]) == 0  # CheXpert: the rebuild test above
    out = capsys.readouterr().out
    assert out.count(" OK;") == 2 and "MISMATCH" not in out


def test_rsna_manifest_unchanged_by_the_new_recipe_options():
    meta = json.loads((ROOT / "tasks" / "manifests" / "rsna.json").read_text())
    assert meta["sha256"].startswith("e6267622d2fb")  # the hash before balance / val_groups existed
    assert "balance" not in meta["recipe"] and "val_groups" not in meta["recipe"]


# ----------------------------------------------------------------- balanced training sets
def test_balanced_rule_on_a_hand_built_frame():
    frame = pd.DataFrame({"image_id": ["p1", "p2", "n1", "n2", "n3", "n4", "n5", "n6"], "y": [1, 1, 0, 0, 0, 0, 0, 0]})
    # negatives by sha256("toy:bal:s<seed>\0<id>") rank: s0 n3 n1 n6 ..., s1 n1 n5 n6 ...
    ids = lambda seed: set(frame.loc[balanced_set(frame, "y", "toy", seed), "image_id"])  # noqa: E731
    assert ids(0) == {"p1", "p2", "n3", "n1"}
    assert ids(1) == {"p1", "p2", "n1", "n5"}


def test_balanced_manifest_nests_fractions_inside_the_balanced_set():
    rng = np.random.default_rng(4)
    frame = pd.DataFrame(
        {
            "image_id": [f"x{i:04d}" for i in range(3000)],
            "source_split": "train",
            "group": [f"x{i:04d}" for i in range(3000)],
            "y": (rng.random(3000) < 0.2).astype(int),
        }
    )
    recipe = SplitRecipe(val=500, test=500, stratify=("y",), balance="y")
    manifest = build_manifest(frame, recipe, "toy").merge(frame, on="image_id")
    train = manifest[manifest["split"] == "train"]
    for seed in recipe.seeds:
        bal = train[train[f"bal_s{seed}"] == 1]
        assert bal["y"].sum() == train["y"].sum() == (bal["y"] == 0).sum()  # all positives, as many negatives
        sub10, sub1 = train[f"sub10_s{seed}"] == 1, train[f"sub1_s{seed}"] == 1
        assert sub10.sum() == round(len(bal) * 0.10) and sub1.sum() == round(len(bal) * 0.01)
        assert (sub1 <= sub10).all() and (sub10 <= (train[f"bal_s{seed}"] == 1)).all()
        assert manifest.loc[manifest["split"] != "train", f"bal_s{seed}"].sum() == 0
    rest = manifest[manifest["split"] != "train"]
    assert abs(rest["y"].mean() - frame["y"].mean()) < 0.01  # val / test keep the natural mix
    assert read_manifest_seeds(manifest) == [0, 1, 2]


def read_manifest_seeds(frame):
    from benchmark.splits import Manifest

    return Manifest("toy", frame, "").seeds


# real train-rle.csv: 12,047 images, 2,669 positive; train 8,433 with 1,869 positives
SIIM_TRAIN_POSITIVES = 1869


def test_real_siim_balanced_sets(real_builds):
    records, manifest, meta = real_builds("siim")
    manifest = manifest.merge(records[["image_id", "Pneumothorax"]], on="image_id")
    assert manifest["split"].value_counts().to_dict() == {"train": 8433, "val": 1807, "test": 1807}
    train = manifest[manifest["split"] == "train"]
    assert train["Pneumothorax"].sum() == SIIM_TRAIN_POSITIVES
    for seed in (0, 1, 2):
        bal = train[f"bal_s{seed}"] == 1
        labels = train.loc[bal, "Pneumothorax"]
        assert (labels == 1).sum() == (labels == 0).sum() == SIIM_TRAIN_POSITIVES  # 3,738 images
        sub10, sub1 = train[f"sub10_s{seed}"] == 1, train[f"sub1_s{seed}"] == 1
        assert sub10.sum() == 374 and sub1.sum() == 37  # round(3738 * 0.10), round(3738 * 0.01)
        assert (sub1 <= sub10).all() and (sub10 <= bal).all()
        assert train.loc[sub10, "Pneumothorax"].sum() == 187 and train.loc[sub1, "Pneumothorax"].sum() == 18
        assert meta["balanced_sizes"][f"s{seed}"] == {
            "100": {"positive": 1869, "negative": 1869},
            "10": {"positive": 187, "negative": 187},
            "1": {"positive": 18, "negative": 19},
        }
    assert not (train["bal_s0"] == train["bal_s1"]).all()
    # validation and test keep the natural mix (400 positives each, as before balancing)
    for split in ("val", "test"):
        rows = manifest[manifest["split"] == split]
        assert len(rows) == 1807 and (rows["Pneumothorax"] == 0).sum() == 1407, split


@pytest.fixture(scope="module")
def demo_siim(tmp_path_factory):
    from benchmark.demo import generate_demo_suite
    from benchmark.registry import all_tasks
    from benchmark.suites import demo_suite
    from benchmark.task_data import load_task_data

    root = tmp_path_factory.mktemp("demo-siim")
    generate_demo_suite(root, scale=0.35, datasets=["siim"], progress=False)
    task = all_tasks()["siim_seg"]
    return load_task_data(task, demo_suite(root, generate=False), tmp_path_factory.mktemp("cache"))


def test_demo_siim_trains_on_balanced_sets_including_seeds_beyond_the_manifest(demo_siim):
    data = demo_siim
    assert data.manifest.seeds == [0, 1, 2] and data.manifest.balanced
    labels = data.records["Pneumothorax"]
    positives = int(labels.loc[data.split_ids["train"]].sum())
    assert 0 < positives < len(data.split_ids["train"]) / 2
    for seed in (0, 5):  # seed 5 is drawn on the fly with the same rule
        full = data.train_ids(100, seed)
        assert (labels.loc[full] == 1).sum() == (labels.loc[full] == 0).sum() == positives, seed
        sub10, sub1 = data.train_ids(10, seed), data.train_ids(1, seed)
        assert set(sub1) <= set(sub10) <= set(full)
        assert (
            len(sub10) == round(len(full) * 0.10)
            and abs((labels.loc[sub10] == 1).sum() - (labels.loc[sub10] == 0).sum()) <= 1
        )
        assert len(sub1) == 1 and labels.loc[sub1].sum() == 1  # 1% of 54 images: one, kept positive
    described = data.describe(100, 5)
    assert described["train_composition"].startswith("balanced (all positives + equal negatives")
    assert described["n_train_positive"] == described["n_train_negative"] == positives
    assert data.describe(1, 0)["n_train_positive"] + data.describe(1, 0)["n_train_negative"] == len(
        data.train_ids(1, 0)
    )


# ----------------------------------------------------------------- patient-disjoint val
def test_whole_patient_val_rule_on_a_hand_built_frame():
    # patients by sha256("toy:val\0<patient>") rank: pe pa pb pc pf pd
    sizes = {"pe": 2, "pa": 3, "pb": 1, "pc": 2, "pf": 1, "pd": 1}
    frame = pd.DataFrame([(f"{p}_{k}", p) for p, n in sizes.items() for k in range(n)], columns=["image_id", "group"])
    frame["source_split"], frame["y"] = "train", 0
    # target 4: pe (2), pa would overshoot (5) -> skipped, pb (3), pc skipped, pf (4): stop
    picked = set(frame.loc[group_pick(frame, 4, "toy:val"), "image_id"])
    assert picked == {"pe_0", "pe_1", "pb_0", "pf_0"}
    recipe = SplitRecipe(val=4, stratify=("y",), seeds=(0,), subset_percents=(50,), val_groups=True)
    manifest = build_manifest(frame, recipe, "toy")
    assert set(manifest.loc[manifest["split"] == "val", "image_id"]) == picked
    image_level = build_manifest(frame, replace(recipe, val_groups=False), "toy")
    assert set(image_level.loc[image_level["split"] == "val", "image_id"]) != picked
    # exact is impossible when every patient has two images: the greedy total below it
    pairs = pd.DataFrame([(f"{p}_{k}", p) for p in sizes for k in range(2)], columns=["image_id", "group"])
    assert set(pairs.loc[group_pick(pairs, 3, "toy:val"), "image_id"]) == {"pe_0", "pe_1"}


CHEXPERT_VAL_PATIENTS = 1726
OLD_OVERLAP_PATIENTS = 3731


def test_real_chexpert_val_is_patient_disjoint(real_builds):
    records, manifest, meta = real_builds("chexpert")
    joined = manifest.merge(records[["image_id", "group"]], on="image_id")
    assert joined["split"].value_counts().to_dict() == {"train": 186027, "val": 5000}
    patients = {s: set(joined.loc[joined["split"] == s, "group"]) for s in ("train", "val")}
    assert not patients["train"] & patients["val"]
    assert len(patients["val"]) == CHEXPERT_VAL_PATIENTS
    assert meta["val_by_patient"]["train_val_patient_overlap"] == 0


def test_old_image_level_chexpert_val_shared_patients_with_train(real_builds):
    from tasks.split_recipes import SPLIT_RECIPES

    records, _, _ = real_builds("chexpert")
    old = replace(SPLIT_RECIPES["chexpert"], val_groups=False)
    pool = records.sort_values("image_id", kind="stable").reset_index(drop=True)
    val = draw_val(pool, old, "chexpert")
    val_patients = set(pool.loc[val, "group"])
    train_patients = set(pool.drop(val)["group"])
    assert len(val) == 5000 and len(val_patients) == 4546
    assert len(val_patients & train_patients) == OLD_OVERLAP_PATIENTS
