"""Build the committed split manifests from the REAL official label files.

The PyPI package torchxrayvision ships the official label files of CheXpert (train.csv,
223,414 rows), RSNA Pneumonia (stage_2_train_labels.csv) and SIIM-ACR Pneumothorax
(train-rle.csv). Install it without its dependencies and without importing it
(scripts/setup.sh does):

    pip install --no-deps torchxrayvision==1.5.7
    python tasks/build_manifests.py            # rewrites tasks/manifests/*.csv.gz + *.json
    python tasks/build_manifests.py --check    # rebuilds in memory, compares with the committed hashes

The build is deterministic (hash-ranked selection, see benchmark/splits.py), so a rebuild
reproduces the committed files bit for bit. CheXpert's test set is the official valid.csv
(frontal rows), which torchxrayvision does not ship: the committed CheXpert manifest
therefore lists train and val only, and the test ids are taken from valid.csv at run time
(their hash is recorded in every result). Building all three takes about 15 s.

CheXpert validation by patient: the 5,000 validation images are whole patients (patients
ranked by sha256, taken greedily while they fit, a patient who would overshoot skipped), so
no patient has images in both train and val. On the real train.csv this gives exactly 5,000
images from 1,726 patients; train keeps 186,027 images of 62,808 patients. Val is no longer
stratified by label; its prevalences stay close to train's (%, val vs train: Atelectasis
31.68 / 31.18, Cardiomegaly 12.38 / 12.24, Consolidation 7.28 / 6.78, Edema 32.00 / 32.20,
Pleural Effusion 45.76 / 45.26). The sidecar records these (``val_by_patient``). The earlier
image-level draw put 5,000 images of 4,546 patients in val, 3,731 of whom also had images in
train (tested).

SIIM balanced training sets (MGCA, GLoRIA): each seed trains on every positive train image
plus as many negatives (``bal_s<seed>``), and its 10% / 1% subsets are drawn inside that
set. The real train-rle.csv gives train 8,433 images with 1,869 positives, so the balanced
set is 3,738 images (1,869 + 1,869), 10% 374 (187 + 187) and 1% 37 (18 positives + 19
negatives) for every seed; val and test keep the natural mix (1,807 images, 400
positives each). The sidecar records these (``balanced_sizes``).

Reference targets: for every task on a dataset whose test ids the manifest lists (RSNA,
SIIM), the targets the harness derives for those images from the same label file are written
to ``benchmark/data/reference_targets/paper/<dataset>[.boxes].csv.gz`` (``--check`` compares them bit for
bit); validation refuses a predictions file whose targets differ
(benchmark/reference_targets.py).

MGCA bug fixed here: MGCA drew CheXpert's 5,000 validation rows by POSITION (iloc) and then
dropped them from train by LABEL (drop on a filtered frame's index), so train and val
overlapped. Here val and train are disjoint by construction, by image and by patient (tested).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmark.datasets.chexpert import read_official_train_labels  # noqa: E402
from benchmark.datasets.rsna import read_rsna_labels  # noqa: E402
from benchmark.datasets.siim import read_siim_rle  # noqa: E402
from benchmark import reference_targets as rt  # noqa: E402
from benchmark.registry import all_tasks  # noqa: E402
from benchmark.splits import build_manifest, manifest_bytes, sha256_bytes, sidecar_path, write_manifest  # noqa: E402
from tasks.split_recipes import SPLIT_RECIPES  # noqa: E402

MANIFEST_DIR = ROOT / "tasks" / "manifests"
TXRV_VERSION = "1.5.7"


def txrv_data_dir() -> Path:
    """torchxrayvision's data folder, found without importing the package."""
    spec = importlib.util.find_spec("torchxrayvision")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("torchxrayvision is not installed: pip install --no-deps torchxrayvision==" + TXRV_VERSION)
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def chexpert_records(data: Path):
    return read_official_train_labels(data / "chexpert_train.csv.gz")


def rsna_records(data: Path):
    with zipfile.ZipFile(data / "kaggle_stage_2_train_labels.csv.zip") as archive:
        with archive.open("stage_2_train_labels.csv") as handle:
            return read_rsna_labels(handle)


def siim_records(data: Path):
    return read_siim_rle(data / "siim-pneumothorax-train-rle.csv.gz")


SOURCES = {
    "chexpert": (
        chexpert_records,
        "torchxrayvision/data/chexpert_train.csv.gz (official CheXpert-v1.0-small train.csv)",
    ),
    "rsna": (
        rsna_records,
        "torchxrayvision/data/kaggle_stage_2_train_labels.csv.zip (official stage_2_train_labels.csv)",
    ),
    "siim": (siim_records, "torchxrayvision/data/siim-pneumothorax-train-rle.csv.gz (official train-rle.csv)"),
}


def balanced_sizes(manifest, records, recipe) -> dict:
    """Positives / negatives of every seed's balanced set and of its nested subsets:
    {"s<seed>": {"100": {"positive": p, "negative": n}, "10": ..., "1": ...}}."""
    labels = manifest.merge(records[["image_id", recipe.balance]], on="image_id", how="left")[recipe.balance]
    out = {}
    for seed in recipe.seeds:
        columns = {100: f"bal_s{seed}", **{p: f"sub{p}_s{seed}" for p in recipe.subset_percents}}
        out[f"s{seed}"] = {
            str(percent): {
                "positive": int(((manifest[c] == 1) & (labels == 1)).sum()),
                "negative": int(((manifest[c] == 1) & (labels == 0)).sum()),
            }
            for percent, c in columns.items()
        }
    return out


def val_group_report(manifest, records, recipe) -> dict:
    """Patients in val and train, their overlap (0 by construction) and the label
    prevalence (%) of val against train: val is not stratified when drawn by patient."""
    joined = manifest[["image_id", "split"]].merge(records, on="image_id", how="left")
    groups = {split: set(joined.loc[joined["split"] == split, "group"]) for split in ("train", "val")}
    prevalence = {
        split: {c: round(100 * float(joined.loc[joined["split"] == split, c].mean()), 2) for c in recipe.stratify}
        for split in ("train", "val")
    }
    return {
        "requested_val_images": recipe.val,
        "val_images": int((joined["split"] == "val").sum()),
        "val_patients": len(groups["val"]),
        "train_patients": len(groups["train"]),
        "train_val_patient_overlap": len(groups["train"] & groups["val"]),
        "label_prevalence_percent": prevalence,
    }


def test_targets(dataset: str, manifest, records) -> dict[str, object]:
    """{file stem: canonical reference targets} of the tasks on ``dataset`` whose predictions
    carry targets, on the manifest's test ids (none when the test ids are not listed)."""
    test_ids = manifest.loc[manifest["split"] == "test", "image_id"].astype(str).tolist()
    if not test_ids:
        return {}
    indexed = records.assign(image_id=records["image_id"].astype(str)).set_index("image_id")
    return rt.dataset_references([t for t in all_tasks().values() if t.dataset == dataset], indexed, test_ids)


def build(dataset: str, data: Path):
    reader, source = SOURCES[dataset]
    records = reader(data)
    recipe = SPLIT_RECIPES[dataset]
    manifest = build_manifest(records, recipe, dataset)
    meta = {
        "dataset": dataset,
        "source": source,
        "source_package": f"torchxrayvision=={TXRV_VERSION}",
        "recipe": recipe.to_dict(),
        "test": "listed"
        if (manifest["split"] == "test").any()
        else "official test partition (not listed; hashed at run time)",
    }
    if recipe.balance is not None:
        meta["balanced_sizes"] = balanced_sizes(manifest, records, recipe)
    if recipe.val_groups:
        meta["val_by_patient"] = val_group_report(manifest, records, recipe)
    return manifest, meta, test_targets(dataset, manifest, records)


def report(meta: dict) -> list[str]:
    """Lines printed after a dataset's status line: balanced sizes and val-by-patient facts."""
    lines = []
    for seed, sizes in meta.get("balanced_sizes", {}).items():
        parts = [f"{percent}%: {v['positive']} pos / {v['negative']} neg" for percent, v in sizes.items()]
        lines.append(f"  balanced training sets {seed}: " + "; ".join(parts))
    if "val_by_patient" in meta:
        v = meta["val_by_patient"]
        lines.append(
            f"  val by patient: {v['val_images']} images (requested {v['requested_val_images']}) from "
            f"{v['val_patients']} patients; train {v['train_patients']} patients; "
            f"overlap {v['train_val_patient_overlap']}"
        )
        for split, values in v["label_prevalence_percent"].items():
            lines.append(f"  {split} prevalence %: " + ", ".join(f"{c} {x}" for c, x in values.items()))
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="rebuild in memory and compare with the committed hashes")
    parser.add_argument("--datasets", default=",".join(SOURCES), help="comma-separated datasets (default: all)")
    parser.add_argument("--out", type=Path, default=MANIFEST_DIR)
    parser.add_argument(
        "--targets-out",
        type=Path,
        default=rt.REFERENCE_DIR,
        help="reference targets folder (paper/<dataset>[.boxes].csv.gz below it)",
    )
    args = parser.parse_args(argv)
    data = txrv_data_dir()
    failures = 0
    for dataset in args.datasets.split(","):
        manifest, meta, targets = build(dataset, data)
        path = args.out / f"{dataset}.csv.gz"
        digest = sha256_bytes(manifest_bytes(manifest))
        counts = manifest["split"].value_counts().to_dict()
        if args.check:
            import json

            committed = json.loads(sidecar_path(path).read_text())["sha256"]
            status = "OK" if committed == digest else f"MISMATCH (committed {committed[:12]})"
            failures += committed != digest
            print(f"{dataset}: rebuilt sha256 {digest[:12]} {status}; {counts}")
        else:
            write_manifest(manifest, path, meta)
            print(
                f"{dataset}: wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path} "
                f"sha256 {digest[:12]}; {counts}"
            )
        for line in report(meta):
            print(line)
        for stem, table in targets.items():
            target_path = args.targets_out / "paper" / f"{stem}.csv.gz"
            if args.check:
                same = target_path.is_file() and target_path.read_bytes() == rt.reference_bytes(table)
                failures += not same
                print(
                    f"  reference targets {stem}: {len(table)} rows "
                    f"{'OK' if same else 'MISMATCH or missing: ' + str(target_path)}"
                )
            else:
                rt.write_reference(table, target_path)
                print(f"  reference targets {stem}: wrote {len(table)} rows to {target_path}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
