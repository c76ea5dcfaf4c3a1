"""Build the committed split manifests from the REAL official label files.

The PyPI package torchxrayvision ships the official label files of CheXpert (train.csv,
223,414 rows) and RSNA Pneumonia (stage_2_train_labels.csv). Install it without its
dependencies and without importing it (scripts/setup.sh does):

    pip install --no-deps torchxrayvision==1.5.7
    python tasks/build_manifests.py            # rewrites tasks/manifests/*.csv.gz + *.json
    python tasks/build_manifests.py --check    # rebuilds in memory, compares with the committed hashes

The build is deterministic (hash-ranked stratified selection, see benchmark/splits.py), so a
rebuild reproduces the committed files bit for bit. CheXpert's test set is the official
valid.csv (frontal rows), which torchxrayvision does not ship: the committed CheXpert
manifest therefore lists train and val only, and the test ids are taken from valid.csv at
run time (their hash is recorded in every result).

MGCA bug fixed here: MGCA drew CheXpert's 5,000 validation rows by POSITION (iloc) and then
dropped them from train by LABEL (drop on a filtered frame's index), so train and val
overlapped. Here val and train are disjoint by construction (tested).
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


SOURCES = {
    "chexpert": (chexpert_records, "torchxrayvision/data/chexpert_train.csv.gz (official CheXpert-v1.0-small train.csv)"),
    "rsna": (rsna_records, "torchxrayvision/data/kaggle_stage_2_train_labels.csv.zip (official stage_2_train_labels.csv)"),
    "siim": (lambda data: __import__("benchmark.datasets.siim", fromlist=["x"]).read_siim_rle(data / "siim-pneumothorax-train-rle.csv.gz"), "torchxrayvision/data/siim-pneumothorax-train-rle.csv.gz (official train-rle.csv)"),  # [seg]
}


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
        "test": "listed" if (manifest["split"] == "test").any() else "official test partition (not listed; hashed at run time)",
    }
    return manifest, meta


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="rebuild in memory and compare with the committed hashes")
    parser.add_argument("--datasets", default=",".join(SOURCES), help="comma-separated datasets (default: all)")
    parser.add_argument("--out", type=Path, default=MANIFEST_DIR)
    args = parser.parse_args(argv)
    data = txrv_data_dir()
    failures = 0
    for dataset in args.datasets.split(","):
        manifest, meta = build(dataset, data)
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
            print(f"{dataset}: wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path} sha256 {digest[:12]}; {counts}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
