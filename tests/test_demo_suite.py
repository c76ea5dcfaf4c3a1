"""The demo (smoke) suite generator: determinism, completion marker, the EXACT official
layouts, the SIIM run-length encoding, and labels / boxes / masks caused by the drawing."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import re
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image

from benchmark.demo import (
    DEMO_DATASETS,
    GENERATOR_VERSION,
    MARKER_FILE,
    TRUTH_DIR,
    generate_demo_suite,
    read_marker,
    rle_decode,
    rle_encode,
)
from benchmark.demo.writers import WRITERS, DemoContext
from benchmark.errors import ConfigError

SEED, SCALE, SIZE = 7, 0.15, 128
CHEXPERT_HEADER = (
    "Path,Sex,Age,Frontal/Lateral,AP/PA,No Finding,Enlarged Cardiomediastinum,Cardiomegaly,Lung Opacity,"
    "Lung Lesion,Edema,Consolidation,Pneumonia,Atelectasis,Pneumothorax,Pleural Effusion,Pleural Other,"
    "Fracture,Support Devices"
)
JPEG_BASELINE, EXPLICIT_LE = "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.1"


# ---------------------------------------------------------------------------- helpers
@pytest.fixture(scope="module")
def suite(tmp_path_factory) -> Path:
    return generate_demo_suite(
        tmp_path_factory.mktemp("demo") / "suite", seed=SEED, scale=SCALE, image_size=SIZE, progress=False
    )


def truth(root: Path, dataset: str) -> dict:
    return json.loads((root / TRUTH_DIR / f"{dataset}.json").read_text())


def file_hashes(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def read_csv(path: Path) -> tuple[str, list[dict[str, str]]]:
    text = path.read_text()
    return text.split("\n", 1)[0], list(csv.DictReader(io.StringIO(text)))


def expected_count(full: int, minimum: int, scale: float = SCALE) -> int:
    return max(minimum, round(full * scale))


def grey(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        image.load()
        return np.asarray(image.convert("L"), dtype=np.float64)


def ellipse_mask(shape, shape_json: dict) -> np.ndarray:
    ys, xs = np.mgrid[: shape[0], : shape[1]]
    return ((xs - shape_json["cx"]) / shape_json["rx"]) ** 2 + ((ys - shape_json["cy"]) / shape_json["ry"]) ** 2 <= 1


def packed_sha256(mask: np.ndarray) -> str:
    return hashlib.sha256(np.packbits(mask.astype(bool)).tobytes()).hexdigest()


# ---------------------------------------------------------------------------- generation protocol
def test_marker_and_truth_files(suite):
    lines = (suite / MARKER_FILE).read_text().splitlines()
    assert (
        lines[0]
        == "medvlp-bench demo (smoke) suite: synthetic images, numbers are NOT comparable with published results"
    )
    assert f"generator_version: {GENERATOR_VERSION}" in lines and f"seed: {SEED}" in lines
    parameters, datasets = read_marker(suite)
    assert (parameters.seed, parameters.image_size, parameters.scale) == (SEED, SIZE, SCALE)
    assert datasets == DEMO_DATASETS
    for name in DEMO_DATASETS:
        assert (suite / name).is_dir()
        assert truth(suite, name)["seed"] == SEED
    assert (suite / "mimic-cxr" / "2.0.0" / "files").is_dir()
    leftovers = [p for p in suite.rglob("*") if p.name.endswith((".part", ".started"))]
    assert leftovers == []


def test_generation_is_deterministic_and_second_call_is_a_no_op(suite, tmp_path):
    again = generate_demo_suite(tmp_path / "again", seed=SEED, scale=SCALE, image_size=SIZE, progress=False)
    assert again == tmp_path / "again"
    first, second = file_hashes(suite), file_hashes(again)
    assert len(first) > 400 and first == second
    stamps = {p: p.stat().st_mtime_ns for p in again.rglob("*") if p.is_file()}
    generate_demo_suite(again, seed=SEED, scale=SCALE, image_size=SIZE, progress=False)
    assert {p: p.stat().st_mtime_ns for p in again.rglob("*") if p.is_file()} == stamps


def test_killed_run_and_new_parameters_regenerate(tmp_path):
    root = tmp_path / "suite"
    generate_demo_suite(root, seed=1, scale=0.05, datasets=["object_cxr"], progress=False)
    first = file_hashes(root)
    (root / MARKER_FILE).unlink()  # as if killed before the end
    (root / "object-CXR" / "train" / "stray.jpg").write_bytes(b"half-written")
    generate_demo_suite(root, seed=1, scale=0.05, datasets=["object-CXR"], progress=False)
    assert file_hashes(root) == first
    generate_demo_suite(root, seed=2, scale=0.05, datasets=["object_cxr"], progress=False)
    assert read_marker(root)[0].seed == 2
    assert file_hashes(root)["object-CXR/train.csv"] != first["object-CXR/train.csv"]
    # adding a dataset with the same parameters keeps the first one and lists both
    generate_demo_suite(root, seed=2, scale=0.05, datasets=["covidx"], progress=False)
    assert read_marker(root)[1] == ("COVIDx", "object-CXR")


def test_the_harness_redraws_a_suite_of_an_older_generator_version(tmp_path, capsys):
    from benchmark.suites import demo_suite

    root = tmp_path / "suite"
    generate_demo_suite(root, seed=3, scale=0.01, image_size=64, progress=False)
    current = file_hashes(root)
    demo_suite(root, progress=False)  # complete and current: reused as it is
    assert file_hashes(root) == current and capsys.readouterr().out == ""
    marker = root / MARKER_FILE
    marker.write_text(marker.read_text().replace(f"generator_version: {GENERATOR_VERSION}", "generator_version: 0"))
    (root / "object-CXR" / "train.csv").write_text("image_name,annotation\n")  # what an old generator wrote
    demo_suite(root, progress=False)
    assert "drawn by generator version 0; redrawing it" in capsys.readouterr().out
    parameters, datasets = read_marker(root)
    assert (parameters.version, parameters.seed, parameters.scale, parameters.image_size) == (
        GENERATOR_VERSION,
        3,
        0.01,
        64,
    )
    assert datasets == DEMO_DATASETS and file_hashes(root) == current


def test_progress_bar(tmp_path, capsys):
    generate_demo_suite(tmp_path, scale=0.01, datasets=["object_cxr"], progress=True)
    assert "demo suite" in capsys.readouterr().err


def test_refuses_to_overwrite_folders_it_did_not_write(tmp_path):
    real = tmp_path / "CheXpert-v1.0-small"
    real.mkdir()
    (real / "train.csv").write_text("real data\n")
    with pytest.raises(ConfigError, match="not written by the demo-suite generator"):
        generate_demo_suite(tmp_path, datasets=["chexpert"], scale=0.05, progress=False)
    assert (real / "train.csv").read_text() == "real data\n"


@pytest.mark.parametrize("kwargs", [{"datasets": ["nope"]}, {"scale": 0}, {"image_size": 8}, {"seed": -1}])
def test_bad_arguments(tmp_path, kwargs):
    with pytest.raises(ConfigError):
        generate_demo_suite(tmp_path, progress=False, **kwargs)


def test_counts_at_scale_one():
    """Planning is cheap: check the full-scale counts without drawing anything."""
    plans = {w.name: w.plan(DemoContext(Path("/unused"), 0, 128, 1.0)) for w in WRITERS}
    chexpert = plans["CheXpert-v1.0-small"]
    assert len({i.study.patient for i in chexpert if i.study.split == "train"}) == 800
    assert sum(i.view == "frontal" and i.study.split == "valid" for i in chexpert) == 80
    assert len(plans["rsna-pneumonia-detection-challenge"]) == 700
    covidx = plans["COVIDx"]
    assert sum(i.split == "train" for i in covidx) == 600
    assert Counter(i.label for i in covidx if i.split == "test") == {"normal": 30, "pneumonia": 30, "COVID-19": 30}
    assert len(plans["siim-acr-pneumothorax"]) == 400
    assert Counter(i.split for i in plans["object-CXR"]) == {"train": 400, "dev": 100}
    assert len(plans["mimic-cxr-jpg"]) == 200


# ---------------------------------------------------------------------------- CheXpert
def test_chexpert_layout(suite):
    folder = suite / "CheXpert-v1.0-small"
    info = truth(suite, "CheXpert-v1.0-small")["images"]
    header, train = read_csv(folder / "train.csv")
    valid_header, valid = read_csv(folder / "valid.csv")
    assert header == valid_header == CHEXPERT_HEADER
    assert len({r["Path"].split("/")[2] for r in train}) == expected_count(800, 20)
    assert sum(r["Frontal/Lateral"] == "Frontal" for r in valid) == expected_count(80, 10)
    assert valid[0]["Path"] == "CheXpert-v1.0-small/valid/patient64541/study1/view1_frontal.jpg"
    assert train[0]["Path"] == "CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg"
    pattern = re.compile(r"^CheXpert-v1\.0-small/(train|valid)/patient\d{5}/study\d+/view(1_frontal|2_lateral)\.jpg$")
    label_columns = CHEXPERT_HEADER.split(",")[5:]
    for split, rows, allowed in (("train", train, {"1.0", "0.0", "-1.0", ""}), ("valid", valid, {"1.0", "0.0"})):
        for row in rows:
            assert pattern.match(row["Path"]) and row["Path"].split("/")[1] == split
            assert row["Sex"] in ("Male", "Female") and row["Age"].isdigit()
            lateral = row["Path"].endswith("lateral.jpg")
            assert row["Frontal/Lateral"] == ("Lateral" if lateral else "Frontal")
            assert (row["AP/PA"] == "") if lateral else (row["AP/PA"] in ("AP", "PA"))
            assert {row[c] for c in label_columns} <= allowed
            for label, value in info[row["Path"]]["labels"].items():
                assert row[label] == ("" if value is None else f"{value:.1f}")
            image = Image.open(suite / row["Path"])
            assert (image.format, image.mode, image.size) == ("JPEG", "L", (SIZE, SIZE))
    frontal = [r for r in train if r["Frontal/Lateral"] == "Frontal"]
    laterals = sum(r["Frontal/Lateral"] == "Lateral" for r in train)
    assert 0.05 <= laterals / len(frontal) <= 0.15
    assert any(r["Path"].endswith("study2/view1_frontal.jpg") for r in train)
    for label in ("Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion"):
        values = Counter(r[label] for r in frontal)
        assert 0.13 <= values["1.0"] / len(frontal) <= 0.32, label
        assert values["-1.0"] >= 1 and values[""] >= 1, label


def _lung_base_contrast(pixels: np.ndarray, lungs: list[dict]) -> float:
    """Max over lungs of (mean of the lateral lung base) - (mean of the lateral mid lung)."""
    ys, xs = np.mgrid[: pixels.shape[0], : pixels.shape[1]]
    contrasts = []
    for lung in lungs:
        inside = ellipse_mask(pixels.shape, lung) & ((xs - lung["cx"]) * lung["outward"] > 0)
        base = inside & (ys > lung["cy"] + 0.55 * lung["ry"])
        mid = inside & (ys > lung["cy"] - 0.5 * lung["ry"]) & (ys < lung["cy"] - 0.1 * lung["ry"])
        contrasts.append(pixels[base].mean() - pixels[mid].mean())
    return max(contrasts)


def _beside_normal_heart(pixels: np.ndarray, anatomy: dict) -> float:
    """Mean of the bands just outside where a normal-sized heart ends."""
    heart, normal = anatomy["heart"], anatomy["normal_heart_rx"]
    ys, xs = np.mgrid[: pixels.shape[0], : pixels.shape[1]]
    distance = np.abs(xs - heart["cx"])
    band = (np.abs(ys - heart["cy"]) < 0.4 * heart["ry"]) & (distance > 1.15 * normal) & (distance < 1.45 * normal)
    return pixels[band].mean()


def test_chexpert_labels_are_caused_by_the_drawing(suite):
    effusion, heart = defaultdict(list), defaultdict(list)
    for path, info in truth(suite, "CheXpert-v1.0-small")["images"].items():
        if info["view"] != "frontal":
            continue
        pixels = grey(suite / path)
        effusion[info["labels"]["Pleural Effusion"] == 1.0].append(
            _lung_base_contrast(pixels, info["anatomy"]["lungs"])
        )
        heart[info["labels"]["Cardiomegaly"] == 1.0].append(_beside_normal_heart(pixels, info["anatomy"]))
    assert np.mean(effusion[True]) > np.mean(effusion[False]) + 30
    assert np.median(effusion[True]) > np.percentile(effusion[False], 75)
    assert np.mean(heart[True]) > np.mean(heart[False]) + 40


# ---------------------------------------------------------------------------- RSNA
def test_rsna_layout_boxes_and_dicoms(suite):
    folder = suite / "rsna-pneumonia-detection-challenge"
    info = truth(suite, "rsna-pneumonia-detection-challenge")["patients"]
    header, rows = read_csv(folder / "stage_2_train_labels.csv")
    class_header, classes = read_csv(folder / "stage_2_detailed_class_info.csv")
    assert header == "patientId,x,y,width,height,Target" and class_header == "patientId,class"
    assert [r["patientId"] for r in rows] == [r["patientId"] for r in classes]
    by_patient = defaultdict(list)
    for row in rows:
        by_patient[row["patientId"]].append(row)
    assert len(by_patient) == expected_count(700, 10) == len(info)
    assert all(
        re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", p) for p in by_patient
    )
    positives = [p for p, rs in by_patient.items() if rs[0]["Target"] == "1"]
    assert 0.25 <= len(positives) / len(by_patient) <= 0.35
    assert any(len(by_patient[p]) == 2 for p in positives)
    for patient, patient_rows in by_patient.items():
        expected = info[patient]
        if expected["target"] == 0:
            assert len(patient_rows) == 1
            assert [patient_rows[0][k] for k in ("x", "y", "width", "height", "Target")] == ["", "", "", "", "0"]
        else:
            assert all(r["Target"] == "1" for r in patient_rows) and len(patient_rows) == len(expected["boxes"])
            boxes = [[float(r[k]) for k in ("x", "y", "width", "height")] for r in patient_rows]
            assert boxes == [[float(v) for v in b] for b in expected["boxes"]]
    assert {r["class"] for r in classes} == {"Lung Opacity", "Normal", "No Lung Opacity / Not Normal"}
    assert all(r["class"] == "Lung Opacity" for r in classes if r["patientId"] in positives)

    seen = Counter()
    for patient, expected in info.items():
        ds = pydicom.dcmread(folder / "stage_2_train_images" / f"{patient}.dcm")
        assert (ds.Modality, ds.PatientID, ds.BitsStored, ds.SamplesPerPixel) == ("CR", patient, 8, 1)
        assert ds.ViewPosition in ("PA", "AP") and (ds.Rows, ds.Columns) == (2 * SIZE, 2 * SIZE)
        syntax = ds.file_meta.TransferSyntaxUID
        assert syntax == (JPEG_BASELINE if expected["jpeg"] else EXPLICIT_LE)
        assert ds.PhotometricInterpretation == expected["photometric"]
        pixels = ds.pixel_array
        if ds.PhotometricInterpretation == "MONOCHROME1":
            pixels = 255 - pixels  # stored inverted: the reader must invert back
        if syntax == EXPLICIT_LE:
            assert hashlib.sha256(pixels.astype(np.uint8).tobytes()).hexdigest() == expected["pixels_sha256"]
        blocks = pixels.reshape(8, 2 * SIZE // 8, 8, 2 * SIZE // 8).mean(axis=(1, 3)).ravel()
        assert np.abs(blocks - expected["block_means"]).max() <= 3
        seen[(ds.PhotometricInterpretation, syntax)] += 1
    assert seen[("MONOCHROME1", EXPLICIT_LE)] and seen[("MONOCHROME2", EXPLICIT_LE)]
    assert sum(v for (_, s), v in seen.items() if s == JPEG_BASELINE) >= 1


def test_rsna_boxes_hold_the_bright_opacities(suite):
    folder = suite / "rsna-pneumonia-detection-challenge"
    for patient, expected in truth(suite, "rsna-pneumonia-detection-challenge")["patients"].items():
        if not expected["boxes"]:
            continue
        ds = pydicom.dcmread(folder / "stage_2_train_images" / f"{patient}.dcm")
        pixels = ds.pixel_array.astype(float)
        if ds.PhotometricInterpretation == "MONOCHROME1":
            pixels = 255 - pixels
        lungs = np.zeros(pixels.shape, bool)
        for lung in expected["anatomy"]["lungs"]:
            lungs |= ellipse_mask(pixels.shape, lung)
        for x, y, w, h in expected["boxes"]:
            box = pixels[y : y + h, x : x + w]
            assert box.mean() > pixels[lungs].mean() + 20


# ---------------------------------------------------------------------------- COVIDx
def test_covidx_layout(suite):
    folder = suite / "COVIDx"
    info = truth(suite, "COVIDx")["images"]
    lines = {split: (folder / f"{split}.txt").read_text().splitlines() for split in ("train", "test")}
    assert not (folder / "VERSION.txt").exists()
    modes, patients = Counter(), {}
    for split, split_lines in lines.items():
        patients[split] = set()
        for line in split_lines:
            patient, filename, label, source = line.split(" ")
            assert label in ("normal", "pneumonia", "COVID-19")
            assert source in ("cohen", "rsna", "sirm", "ricord", "actmed")
            assert info[f"{split}/{filename}"]["label"] == label
            with Image.open(folder / split / filename) as image:
                image.load()
                assert image.size == (SIZE, SIZE)
                modes[(image.format, image.mode)] += 1
            patients[split].add(patient)
    train_labels = Counter(line.split(" ")[2] for line in lines["train"])
    test_labels = Counter(line.split(" ")[2] for line in lines["test"])
    assert sum(train_labels.values()) == expected_count(600, 9)
    assert max(train_labels.values()) - min(train_labels.values()) <= 1
    assert set(test_labels.values()) == {expected_count(30, 2)} and len(test_labels) == 3
    assert modes[("PNG", "I;16")] and modes[("PNG", "RGB")] and modes[("PNG", "L")] and modes[("JPEG", "L")]
    assert not patients["train"] & patients["test"]


def test_covidx_classes_are_drawn(suite):
    lung_means = defaultdict(list)
    for key, info in truth(suite, "COVIDx")["images"].items():
        pixels = grey(suite / "COVIDx" / key)
        lungs = np.zeros(pixels.shape, bool)
        for lung in info["anatomy"]["lungs"]:
            lungs |= ellipse_mask(pixels.shape, lung)
        lung_means[info["label"]].append(pixels[lungs].mean() - pixels.mean())
    normal = np.mean(lung_means["normal"])
    assert np.mean(lung_means["COVID-19"]) > normal + 4
    assert np.mean(lung_means["pneumonia"]) > normal + 4


# ---------------------------------------------------------------------------- SIIM-ACR
def kaggle_rle2mask(rle: str, width: int, height: int) -> np.ndarray:
    """Kaggle's own mask_functions.rle2mask (verbatim logic), for comparison."""
    mask = np.zeros(width * height)
    array = np.asarray([int(x) for x in rle.split()])
    starts, lengths = array[0::2], array[1::2]
    current_position = 0
    for index, start in enumerate(starts):
        current_position += start
        mask[current_position : current_position + lengths[index]] = 255
        current_position += lengths[index]
    return mask.reshape(width, height)


def test_rle_matches_the_official_encoding():
    mask = np.zeros((3, 3), bool)
    mask[1, 0] = mask[1, 1] = True  # column-major positions 1 and 4
    assert rle_encode(mask) == "1 1 2 1"
    assert rle_encode(np.zeros((4, 5), bool)) == "-1"
    assert not rle_decode(" -1", 4, 5).any()
    rng = np.random.default_rng(0)
    for height, width in ((7, 5), (16, 16), (1, 9)):
        for density in (0.1, 0.5, 0.9):
            mask = rng.uniform(size=(height, width)) < density
            mask[-1, -1] = True  # a run reaching the very last pixel
            rle = rle_encode(mask)
            assert np.array_equal(rle_decode(rle, height, width), mask)
            # Kaggle decodes into (width, height) and transposes: same mask
            assert np.array_equal(kaggle_rle2mask(rle, width, height).T > 0, mask)
    with pytest.raises(ValueError):
        rle_decode("5 10", 2, 2)


def test_siim_layout_rle_and_dicoms(suite):
    folder = suite / "siim-acr-pneumothorax"
    info = truth(suite, "siim-acr-pneumothorax")["images"]
    lines = (folder / "train-rle.csv").read_text().splitlines()
    assert lines[0] == "ImageId, EncodedPixels"
    rows = defaultdict(list)
    for line in lines[1:]:
        image_id, value = line.split(",")
        assert re.fullmatch(r"1\.2\.276\.0\.7230010\.3\.1\.4\.8323329\.\d+\.1517875\d+\.\d+", image_id)
        assert value.startswith(" ") and (value == " -1" or re.fullmatch(r"( \d+)+", value))
        rows[image_id].append(value)
    assert len(rows) == len(info) == expected_count(400, 10)
    positives = [i for i, values in rows.items() if values != [" -1"]]
    assert 0.25 <= len(positives) / len(rows) <= 0.35
    assert any(len(rows[i]) > 1 for i in positives)
    side = 2 * SIZE
    for image_id, values in rows.items():
        expected = info[image_id]
        path = suite / expected["path"]
        assert path.relative_to(folder).parts[0] == "dicom-images-train"
        ds = pydicom.dcmread(path)
        _, study_uid, series_uid, filename = path.relative_to(folder).parts
        assert (ds.StudyInstanceUID, ds.SeriesInstanceUID, f"{ds.SOPInstanceUID}.dcm") == (
            study_uid,
            series_uid,
            filename,
        )
        assert ds.SOPInstanceUID == image_id and ds.file_meta.TransferSyntaxUID == JPEG_BASELINE
        assert (ds.PhotometricInterpretation, ds.BitsAllocated, ds.SamplesPerPixel) == ("MONOCHROME2", 8, 1)
        pixels = ds.pixel_array
        assert pixels.shape == (ds.Rows, ds.Columns) == (side, side)
        blocks = pixels.reshape(8, side // 8, 8, side // 8).mean(axis=(1, 3)).ravel()
        assert np.abs(blocks - expected["block_means"]).max() <= 3
        union = np.zeros((side, side), bool)
        for value in values:
            union |= rle_decode(value, ds.Rows, ds.Columns)
        assert len(values) == expected["rows"]
        assert packed_sha256(union) == expected["mask_sha256"] and union.sum() == expected["mask_pixels"]
        if values != [" -1"]:
            # the drawn pneumothorax: darker than the rest of the lungs and without texture
            lungs = np.zeros(union.shape, bool)
            for lung in expected["anatomy"]["lungs"]:
                lungs |= ellipse_mask(union.shape, lung)
            inside, outside = pixels[union].astype(float), pixels[lungs & ~union].astype(float)
            assert inside.mean() < outside.mean() - 15
            assert inside.std() < outside.std()


# ---------------------------------------------------------------------------- Object-CXR
def test_object_cxr_layout_and_bright_objects(suite):
    folder = suite / "object-CXR"
    info = truth(suite, "object-CXR")["images"]
    kinds = Counter()
    for split, first, full, minimum in (("train", 1, 400, 10), ("dev", 8001, 100, 6)):
        header, rows = read_csv(folder / f"{split}.csv")
        assert header == "image_name,annotation"
        assert len(rows) == expected_count(full, minimum)
        assert rows[0]["image_name"] == f"{first:05d}.jpg"
        assert 0.4 <= sum(bool(r["annotation"]) for r in rows) / len(rows) <= 0.6
        for row in rows:
            pixels = grey(folder / split / row["image_name"])
            assert pixels.shape == (SIZE, SIZE)
            objects = (
                [list(map(int, part.split())) for part in row["annotation"].split(";")] if row["annotation"] else []
            )
            assert objects == [[o["type"], *o["points"]] for o in info[f"{split}/{row['image_name']}"]["objects"]]
            assert len(objects) <= 3
            for kind, *points in objects:
                kinds[kind] += 1
                assert (len(points) == 4) if kind in (0, 1) else (len(points) % 2 == 0 and len(points) >= 6)
                assert all(0 <= v < SIZE for v in points)
                xs, ys = points[0::2], points[1::2]
                region = pixels[min(ys) : max(ys) + 1, min(xs) : max(xs) + 1]
                if kind != 2:  # a filled rectangle / ellipse box is mostly object
                    assert region.mean() > pixels.mean() + 40
                else:  # a thin polygon: its brightest pixels are the object
                    assert region.max() > pixels.mean() + 60
    assert set(kinds) == {0, 1, 2}


# ---------------------------------------------------------------------------- MIMIC-CXR-JPG
def test_mimic_layout_and_reports(suite):
    base = suite / "mimic-cxr-jpg" / "2.0.0"
    info = truth(suite, "mimic-cxr-jpg")["studies"]
    tables = {}
    for name in ("metadata", "split", "chexpert"):
        raw = (base / f"mimic-cxr-2.0.0-{name}.csv.gz").read_bytes()
        assert raw[4:8] == b"\x00\x00\x00\x00"  # gzip mtime 0
        tables[name] = list(csv.reader(io.StringIO(gzip.decompress(raw).decode())))
    assert tables["metadata"][0] == (
        "dicom_id,subject_id,study_id,PerformedProcedureStepDescription,ViewPosition,Rows,Columns,StudyDate,StudyTime,"
        "ProcedureCodeSequence_CodeMeaning,ViewCodeSequence_CodeMeaning,PatientOrientationCodeSequence_CodeMeaning"
    ).split(",")
    assert tables["split"][0] == ["dicom_id", "study_id", "subject_id", "split"]
    labels = tables["chexpert"][0][2:]
    assert tables["chexpert"][0][:2] == ["subject_id", "study_id"] and len(labels) == 14 and labels == sorted(labels)
    assert len(tables["chexpert"]) - 1 == len(info) == expected_count(200, 10)
    views = Counter()
    for dicom_id, subject, study, _, view, rows, columns, date, *_ in tables["metadata"][1:]:
        assert re.fullmatch(r"([0-9a-f]{8}-){4}[0-9a-f]{8}", dicom_id) and re.fullmatch(r"1\d{7}", subject)
        assert re.fullmatch(r"5\d{7}", study) and re.fullmatch(r"2\d{7}", date)
        path = base / "files" / f"p{subject[:2]}" / f"p{subject}" / f"s{study}" / f"{dicom_id}.jpg"
        assert grey(path).shape == (int(rows), int(columns)) == (SIZE, SIZE)
        views[view] += 1
    assert views["LATERAL"] >= 1 and views["PA"] + views["AP"] == len(info)
    assert {row[3] for row in tables["split"][1:]} <= {"train", "validate", "test"}
    no_findings_section = 0
    for subject, study, *values in tables["chexpert"][1:]:
        report = (
            suite / "mimic-cxr" / "2.0.0" / "files" / f"p{subject[:2]}" / f"p{subject}" / f"s{study}.txt"
        ).read_text()
        assert report.startswith("                                 FINAL REPORT\n EXAMINATION:  CHEST")
        assert " IMPRESSION: \n" in report
        no_findings_section += " FINDINGS: \n" not in report
        row = dict(zip(labels, values))
        assert row == {k: ("" if v is None else f"{v:.1f}") for k, v in info[f"s{study}"]["labels"].items()}
        text = " ".join(report.split()).lower()
        if row["Pleural Effusion"] == "1.0":
            assert "pleural effusion" in text and "no pleural effusion" not in text
        if row["Pleural Effusion"] == "0.0":
            assert "no pleural effusion" in text
        if row["Cardiomegaly"] == "1.0":
            assert "heart is" in text and "enlarged" in text
        if row["No Finding"] == "1.0":
            assert "no acute cardiopulmonary process" in text
    assert no_findings_section >= 1
