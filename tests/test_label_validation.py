"""Bad rows of the official label files are named errors (file, line, value, what is allowed),
never silent training data; ``--skip-bad-rows`` leaves their images out, lists them and is
recorded in every result."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import pytest

from benchmark.cli import main
from benchmark.data_roots import DataRoots
from benchmark.datasets.chexpert import CheXpert
from benchmark.datasets.covidx import COVIDx
from benchmark.datasets.object_cxr import ObjectCXR
from benchmark.datasets.rsna import RSNAPneumonia
from benchmark.datasets.siim import SIIMPneumothorax
from benchmark.errors import BadRowsSkippedWarning, DatasetNotFoundError, LabelFileError
from benchmark.results import read_results
from benchmark.submissions import COMPAT_FLAGS
from tests.official_layouts import CHEXPERT_HEADER, write_chexpert, write_covidx, write_rsna

RSNA_HEADER = "patientId,x,y,width,height,Target"
NEG = "0004cfab-14fd-4e49-80ba-63a80b6bddd6"
POS = "00436515-870c-4b36-a041-de91049b9ab4"
GOOD_BOX = f"{POS},264.0,152.0,213.0,379.0,1"


def rsna_with(tmp_path, bad_row: str, *, skip: bool = False):
    """The official RSNA layout whose label file is header, NEG, GOOD_BOX, ``bad_row`` (line 4)."""
    folder = write_rsna(tmp_path)
    (folder / "stage_2_train_labels.csv").write_text("\n".join([RSNA_HEADER, f"{NEG},,,,,0", GOOD_BOX, bad_row]) + "\n")
    return RSNAPneumonia.locate(DataRoots(tmp_path, skip_bad_rows=skip))


def error_of(adapter) -> str:
    with pytest.raises(LabelFileError) as info:
        adapter.records
    message = str(info.value)
    assert "\n" not in message  # the CLI prints it as one line
    return message


# ------------------------------------------------------------------------------------ RSNA
@pytest.mark.parametrize(
    "bad_row,value,problem",
    [
        (f"{POS},562.0,152.0,-256.0,453.0,1", "'-256.0'", "width '-256.0' is not > 0"),  # inverted box
        (f"{POS},562.0,152.0,256.0,0,1", "'0'", "height '0' is not > 0"),
        (f"{POS},,152.0,256.0,453.0,1", "x is empty", "x is empty on a Target 1 row"),  # box silently dropped before
        (f"{POS},562.0,152.0,256.0,abc,1", "'abc'", "height 'abc' is not a number"),
        (f"{POS},-5.0,152.0,256.0,453.0,1", "'-5.0'", "x '-5.0' is negative"),
        (
            f"{POS},900.0,152.0,256.0,453.0,1",
            "900.0 + 256.0",
            "x + width = 900.0 + 256.0 = 1156 is past the image's edge at 1024",
        ),
        (f"{POS},562.0,600.0,256.0,453.0,1", "600.0 + 453.0", "y + height = 600.0 + 453.0 = 1053"),
        (f"{POS},562.0,152.0,256.0,453.0,2", "'2'", "Target '2' is not 0 or 1"),
        (f"{POS},562.0,152.0,256.0,453.0,", "''", "Target '' is not 0 or 1"),
        (f"{NEG},562.0,,,,0", "'562.0'", "x '562.0' is set on a Target 0 row"),
    ],
)
def test_rsna_bad_row_is_a_named_error(tmp_path, bad_row, value, problem):
    message = error_of(rsna_with(tmp_path, bad_row))
    assert message.startswith(
        str(tmp_path / "rsna-pneumonia-detection-challenge" / "stage_2_train_labels.csv") + ", line 4: "
    )
    assert value in message and problem in message
    assert "allowed:" in message and "--skip-bad-rows" in message


def test_rsna_box_bound_is_the_official_1024_image(tmp_path):
    # touching the edge is inside; the docstring says why 1024 (the DICOMs are not opened)
    records = rsna_with(tmp_path, f"{POS},0,0,1024,1024,1").records.set_index("image_id")
    assert records.loc[POS, "boxes"] == [(264.0, 152.0, 213.0, 379.0), (0.0, 0.0, 1024.0, 1024.0)]
    import benchmark.datasets.rsna as rsna

    assert "1024" in rsna.__doc__ and rsna.IMAGE_SIDE == 1024


def test_rsna_line_numbers_count_blank_lines_like_an_editor(tmp_path):
    folder = write_rsna(tmp_path)
    (folder / "stage_2_train_labels.csv").write_text(f"{RSNA_HEADER}\n{NEG},,,,,0\n\n{GOOD_BOX}\n{POS},1,1,-3,4,1\n")
    message = error_of(RSNAPneumonia.locate(DataRoots(tmp_path)))
    assert ", line 5: width '-3' is not > 0" in message


def test_rsna_skip_bad_rows_leaves_the_patient_out_and_lists_the_row(tmp_path):
    adapter = rsna_with(tmp_path, f"{POS},562.0,152.0,-256.0,453.0,1", skip=True)
    with pytest.warns(BadRowsSkippedWarning) as caught:
        records = adapter.records
    # the positive patient lost a box: keeping it would train on an incomplete mask
    assert records["image_id"].tolist() == [NEG]
    text = str(caught[0].message)
    assert "left out 1 image(s) for 1 bad label-file row(s)" in text
    assert "stage_2_train_labels.csv, line 4: width '-256.0' is not > 0" in text
    version = adapter.version()
    assert (
        "--skip-bad-rows skipped 1 bad row(s), 1 image(s) left out: "
        "stage_2_train_labels.csv line 4: width '-256.0' is not > 0" in version
    )


def test_clean_files_record_that_nothing_was_skipped(tmp_path):
    write_rsna(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", BadRowsSkippedWarning)
        adapter = RSNAPneumonia.locate(DataRoots(tmp_path, skip_bad_rows=True))
        assert len(adapter.records) == 2
    assert adapter.version().endswith("; --skip-bad-rows: no bad rows")
    assert "skip" not in RSNAPneumonia.locate(DataRoots(tmp_path)).version()


# ------------------------------------------------------------------------------------ CheXpert
def chexpert_row(labels: dict[str, str], view: str = "Frontal", patient: str = "patient00003") -> str:
    """A train.csv row; ``labels`` by column name, others blank."""
    columns = CHEXPERT_HEADER.split(",")
    values = {c: "" for c in columns}
    values.update(
        {
            "Path": f"CheXpert-v1.0-small/train/{patient}/study1/view1_frontal.jpg",
            "Sex": "Male",
            "Age": "50",
            "Frontal/Lateral": view,
            "AP/PA": "AP",
            **labels,
        }
    )
    return ",".join(values[c] for c in columns)


@pytest.mark.parametrize("file", ["train.csv", "valid.csv"])
def test_chexpert_label_two_is_a_named_error(tmp_path, file):
    folder = write_chexpert(tmp_path)
    path = folder / file
    lines = path.read_text().splitlines()
    lines.append(chexpert_row({"Edema": "2.0", "Atelectasis": "1.0"}))
    path.write_text("\n".join(lines) + "\n")
    line = len(lines)  # train.csv: header + 3 rows + this = line 5; valid.csv: line 3
    message = error_of(CheXpert.locate(DataRoots(tmp_path)))
    assert message.startswith(
        f"{path}, line {line}: Edema label '2.0' is not blank, 1.0, 0.0 or -1.0; allowed: Edema: blank"
    )
    assert line == (5 if file == "train.csv" else 3)


@pytest.mark.parametrize(
    "labels,view,problem",
    [
        ({"Cardiomegaly": "yes"}, "Frontal", "Cardiomegaly label 'yes' is not blank, 1.0, 0.0 or -1.0"),
        ({"Pleural Effusion": "0.5"}, "Frontal", "Pleural Effusion label '0.5' is not blank"),
        (
            {"Consolidation": "nan"},
            "Frontal",
            "Consolidation label 'nan' is not blank",
        ),  # pandas would read NaN = blank
        ({}, "", "Frontal/Lateral '' is not Frontal or Lateral"),
        ({}, "Oblique", "Frontal/Lateral 'Oblique' is not Frontal or Lateral"),
    ],
)
def test_chexpert_other_bad_values(tmp_path, labels, view, problem):
    folder = write_chexpert(tmp_path)
    with open(folder / "train.csv", "a") as handle:
        handle.write(chexpert_row(labels, view) + "\n")
    assert f"train.csv, line 5: {problem}" in error_of(CheXpert.locate(DataRoots(tmp_path)))


def test_chexpert_skip_bad_rows_drops_only_the_bad_image(tmp_path):
    folder = write_chexpert(tmp_path)
    with open(folder / "train.csv", "a") as handle:
        handle.write(chexpert_row({"Edema": "2.0"}) + "\n")
        handle.write(chexpert_row({"Edema": "1.0"}, patient="patient00004") + "\n")
    adapter = CheXpert.locate(DataRoots(tmp_path, skip_bad_rows=True))
    with pytest.warns(BadRowsSkippedWarning, match=r"train\.csv, line 5: Edema label '2\.0'"):
        records = adapter.records.set_index("image_id")
    assert "train/patient00003/study1/view1_frontal.jpg" not in records.index
    assert records.loc["train/patient00004/study1/view1_frontal.jpg", "Edema"] == 1
    assert len(records) == 4  # the three frontal images of write_chexpert + patient00004
    assert set(records[["Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion"]].stack()) <= {0, 1}


# ------------------------------------------------------------------------------------ COVIDx
def test_covidx_unknown_label_names_file_row_and_classes(tmp_path):
    folder = write_covidx(tmp_path)
    with open(folder / "train.txt", "a") as handle:
        handle.write("12 e.png tuberculosis sirm\n")
    message = error_of(COVIDx.locate(DataRoots(tmp_path)))
    assert message.startswith(
        f"{folder / 'train.txt'}, line 4: label 'tuberculosis' (image e.png) is not a class of this release"
    )
    assert "allowed: the classes normal, pneumonia, COVID-19" in message
    assert "binary" not in message


def test_covidx_short_line_is_a_named_error(tmp_path):
    folder = write_covidx(tmp_path)
    (folder / "test.txt").write_text("11 d.png COVID-19 ricord\n13 f.png\n")
    assert f"{folder / 'test.txt'}, line 2: '13 f.png' has 2 field(s)" in error_of(COVIDx.locate(DataRoots(tmp_path)))


def test_covidx_binary_release_is_still_refused_as_a_release(tmp_path):
    write_covidx(tmp_path, labels=("negative", "negative", "positive"))
    with pytest.raises(
        DatasetNotFoundError,
        match=r"binary release.*\['negative', 'positive'\]|"
        r"only the labels \['negative', 'positive'\]: this is a binary release",
    ):
        COVIDx.locate(DataRoots(tmp_path)).records


def test_covidx_skip_bad_rows(tmp_path):
    folder = write_covidx(tmp_path)
    with open(folder / "train.txt", "a") as handle:
        handle.write("12 e.png tuberculosis sirm\n")
    adapter = COVIDx.locate(DataRoots(tmp_path, skip_bad_rows=True))
    with pytest.warns(BadRowsSkippedWarning, match="train.txt, line 4: label 'tuberculosis'"):
        records = adapter.records
    assert records["image_id"].tolist() == ["train/a.png", "train/b.jpg", "train/c.png", "test/d.png"]
    assert "skipped 1 bad row(s), 1 image(s) left out: train.txt line 4" in adapter.version()


# ------------------------------------------------------------------------------------ SIIM
def siim_with(tmp_path, bad_encoding: str, *, skip: bool = False):
    folder = tmp_path / "siim-acr-pneumothorax"
    (folder / "dicom-images-train").mkdir(parents=True)
    (folder / "train-rle.csv").write_text(
        "ImageId, EncodedPixels\n1.2.3.1, -1\n1.2.3.2, 10 20\n1.2.3.3, 5 5 5 5\n"
        f"1.2.3.3, {bad_encoding}\n1.2.3.4, 100 3\n"
    )
    return SIIMPneumothorax.locate(DataRoots(tmp_path, skip_bad_rows=skip))


@pytest.mark.parametrize(
    "encoding,problem",
    [
        ("10 2x 3 4", "EncodedPixels holds '2x', not a non-negative integer"),
        ("10 -4", "EncodedPixels holds '-4', not a non-negative integer"),
        ("10 4.5", "EncodedPixels holds '4.5', not a non-negative integer"),
        ("10 20 30", "EncodedPixels has 3 numbers, an odd count"),
        ("1048000 500 100 1", "EncodedPixels runs to pixel 1048601, past the 1024x1024 image's 1048576 pixels"),
        ("", "EncodedPixels is empty"),
    ],
)
def test_siim_bad_rle_is_a_named_error_at_read_time(tmp_path, encoding, problem):
    message = error_of(siim_with(tmp_path, encoding))
    assert message.startswith(f"{tmp_path / 'siim-acr-pneumothorax' / 'train-rle.csv'}, line 5: {problem}")
    assert "allowed: -1 (no pneumothorax) or an even number of non-negative integers" in message


def test_siim_run_ending_exactly_at_the_last_pixel_is_fine(tmp_path):
    records = siim_with(tmp_path, "1048570 6").records.set_index("image_id")
    assert records.loc["1.2.3.3", "rle"] == ("5 5 5 5", "1048570 6")


def test_siim_skip_bad_rows_drops_the_whole_image(tmp_path):
    adapter = siim_with(tmp_path, "10 20 30", skip=True)
    with pytest.warns(BadRowsSkippedWarning, match="train-rle.csv, line 5: EncodedPixels has 3 numbers"):
        records = adapter.records
    # 1.2.3.3 had a good row (line 4) too: keeping it would train on half its mask
    assert records["image_id"].tolist() == ["1.2.3.1", "1.2.3.2", "1.2.3.4"]


def test_decoding_past_a_small_image_is_a_named_error():
    from benchmark.datasets.siim import decode_siim_rle

    with pytest.raises(LabelFileError, match="runs past pixel 20 \\(4x5 image\\)"):
        decode_siim_rle("0 30", 4, 5)


# ------------------------------------------------------------------------------------ Object-CXR
def object_cxr_with(tmp_path, bad_annotation: str, *, file: str = "train.csv", skip: bool = False):
    folder = tmp_path / "object-CXR"
    for sub in ("train", "dev"):
        (folder / sub).mkdir(parents=True)
    good = {"train.csv": ["00001.jpg,0 10 20 50 60", "00002.jpg,"], "dev.csv": ["08001.jpg,2 1 1 9 1 5 7"]}
    number = "00003" if file == "train.csv" else "08002"
    good[file].append(f'{number}.jpg,"{bad_annotation}"')
    for name, rows in good.items():
        (folder / name).write_text("image_name,annotation\n" + "\n".join(rows) + "\n")
    return ObjectCXR.locate(DataRoots(tmp_path, skip_bad_rows=skip))


@pytest.mark.parametrize(
    "annotation,problem",
    [
        ("3 1 1 2 2", "object type '3' in '3 1 1 2 2' is not 0, 1 or 2"),
        ("0 1 1 20 20;x 1 1 2 2", "object type 'x' in 'x 1 1 2 2' is not 0, 1 or 2"),
        ("0 10 20 50 60 70 80", "rectangle '0 10 20 50 60 70 80' has 6 coordinates, not 4"),
        ("1 10 20 50", "ellipse '1 10 20 50' has 3 coordinates, not 4"),
        ("2 1 1 9 1", "polygon '2 1 1 9 1' has 4 coordinates, not an even number >= 6"),
        ("2 1 1 9 1 5 7 8", "polygon '2 1 1 9 1 5 7 8' has 7 coordinates, not an even number >= 6"),
        ("0 10 20 5o 60", "coordinate '5o' in '0 10 20 5o 60' is not a number"),
        ("0 10 20 inf 60", "coordinate 'inf' in '0 10 20 inf 60' is not a finite number"),
        ("0 10 20 10 60", "rectangle '0 10 20 10 60' has a degenerate box (width 0, height 40)"),
        ("2 1 5 9 5 20 5", "polygon '2 1 5 9 5 20 5' has a degenerate box (width 19, height 0)"),
    ],
)
def test_object_cxr_bad_annotation_is_a_named_error(tmp_path, annotation, problem):
    message = error_of(object_cxr_with(tmp_path, annotation))
    assert message.startswith(f"{tmp_path / 'object-CXR' / 'train.csv'}, line 4: {problem}; allowed: empty (no object)")


def test_object_cxr_dev_csv_rows_are_checked_too(tmp_path):
    message = error_of(object_cxr_with(tmp_path, "0 1 1 2", file="dev.csv"))
    assert f"{tmp_path / 'object-CXR' / 'dev.csv'}, line 3: rectangle '0 1 1 2' has 3 coordinates, not 4" in message


def test_object_cxr_skip_bad_rows(tmp_path):
    adapter = object_cxr_with(tmp_path, "2 1 1 9 1", skip=True)
    with pytest.warns(BadRowsSkippedWarning, match="train.csv, line 4: polygon '2 1 1 9 1'"):
        records = adapter.records
    assert records["image_id"].tolist() == ["00001", "00002", "08001"]


# ------------------------------------------------------------------------------------ CLI
def test_skip_bad_rows_is_a_compatibility_flag_submissions_reject():
    assert "skip_bad_rows" in COMPAT_FLAGS


def test_cli_stops_on_a_bad_rsna_row_with_the_message(tmp_path, capsys):
    folder = write_rsna(tmp_path / "data")
    (folder / "stage_2_train_labels.csv").write_text(f"{RSNA_HEADER}\n{NEG},,,,,0\n{POS},562.0,152.0,-256.0,453.0,1\n")
    code = main(
        [
            "--encoder",
            "random:resnet_tiny",
            "--suite",
            "paper",
            "--data-root",
            str(tmp_path / "data"),
            "--tasks",
            "rsna_cls",
            "--fractions",
            "100",
            "--seeds",
            "0",
            "--limit",
            "4",
            "--cache-dir",
            str(tmp_path / "c"),
            "--output",
            str(tmp_path / "out"),
            "--no-progress",
            "--workers",
            "0",
            "--device",
            "cpu",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(f"error: {folder / 'stage_2_train_labels.csv'}, line 3: width '-256.0' is not > 0; allowed:")
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not list((tmp_path / "out").glob("*/*.json"))


@pytest.fixture(scope="module")
def covidx_demo(tmp_path_factory):
    """A demo suite holding only COVIDx (fast to generate)."""
    from benchmark.demo import generate_demo_suite

    root = tmp_path_factory.mktemp("demo-covidx")
    generate_demo_suite(root, scale=0.35, datasets=["covidx"], progress=False)
    return root


def demo_copy_with_bad_row(demo: Path, target: Path) -> Path:
    """A demo root whose COVIDx train.txt gains one bad row (images linked, labels copied)."""
    target.mkdir()
    for entry in demo.iterdir():
        if entry.name == "COVIDx":
            (target / "COVIDx").mkdir()
            for sub in entry.iterdir():
                if sub.is_dir():
                    (target / "COVIDx" / sub.name).symlink_to(sub)
                else:
                    shutil.copy(sub, target / "COVIDx" / sub.name)
        elif entry.is_dir():
            (target / entry.name).symlink_to(entry)
        else:
            shutil.copy(entry, target / entry.name)
    train = target / "COVIDx" / "train.txt"
    lines = train.read_text().splitlines()
    patient, filename, _, source = lines[4].split(" ", 3)
    lines[4] = f"{patient} {filename} tuberculosis {source}"  # line 5 of the file
    train.write_text("\n".join(lines) + "\n")
    return target


def test_cli_demo_bad_row_stops_and_skip_bad_rows_runs_and_records(covidx_demo, tmp_path, capsys):
    root = demo_copy_with_bad_row(covidx_demo, tmp_path / "demo")
    args = [
        "--encoder",
        "random:resnet_tiny",
        "--suite",
        "demo",
        "--demo-root",
        str(root),
        "--tasks",
        "covidx_cls",
        "--fractions",
        "100",
        "--seeds",
        "0",
        "--limit",
        "24",
        "--cache-dir",
        str(tmp_path / "c"),
        "--output",
        str(tmp_path / "out"),
        "--no-progress",
        "--workers",
        "0",
        "--device",
        "cpu",
    ]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"{root / 'COVIDx' / 'train.txt'}, line 5: label 'tuberculosis'" in err
    assert "allowed: the classes normal, pneumonia, COVID-19" in err and "binary" not in err

    with pytest.warns(BadRowsSkippedWarning, match="train.txt, line 5: label 'tuberculosis'"):
        assert main([*args, "--skip-bad-rows"]) == 0
    (result,) = read_results(tmp_path / "out")
    assert result.flags["skip_bad_rows"] is True
    assert (
        "--skip-bad-rows skipped 1 bad row(s), 1 image(s) left out: train.txt line 5: label 'tuberculosis'"
        in result.data["dataset_version"]
    )
