"""Image decoding per docs/protocol.md and dataset adapters on hand-written official layouts."""

import numpy as np
import pytest
from PIL import Image

from benchmark.data_roots import DataRoots, resolve_data_roots
from benchmark.datasets.chexpert import CheXpert
from benchmark.datasets.covidx import COVIDx
from benchmark.datasets.rsna import RSNAPneumonia
from benchmark.errors import DatasetNotFoundError
from benchmark.images import max_scale_to_uint8, read_grey
from benchmark.preprocess import PreprocessSpec, preprocess, resize_and_pad
from tests.official_layouts import gradient, write_chexpert, write_covidx, write_dicom, write_rsna


def test_dicom_max_scaling_and_monochrome1_inversion(tmp_path):
    pixels = gradient()
    write_dicom(tmp_path / "m2.dcm", pixels)
    write_dicom(tmp_path / "m1.dcm", pixels, monochrome1=True)
    expected = max_scale_to_uint8(pixels)
    assert np.array_equal(read_grey(tmp_path / "m2.dcm"), expected)
    # MONOCHROME1 stores max - x; reading inverts back: 255 - maxscale(max - x)
    m1 = read_grey(tmp_path / "m1.dcm")
    assert np.array_equal(m1, 255 - max_scale_to_uint8(pixels.max() - pixels))
    assert m1[:, -1].mean() > m1[:, 0].mean()  # bright side stays bright


def test_twelve_bit_dicom_is_max_scaled(tmp_path):
    pixels = (np.arange(64 * 48).reshape(64, 48) % 4096).astype(np.uint16)
    write_dicom(tmp_path / "d12.dcm", pixels, bits=12)
    image = read_grey(tmp_path / "d12.dcm")
    assert image.dtype == np.uint8 and image.max() == 255
    assert image[0, 1] == round(1 * 255 / pixels.max())


def test_jpeg_compressed_dicom_decodes(tmp_path):
    pixels = gradient()
    write_dicom(tmp_path / "j.dcm", pixels, jpeg=True)
    decoded = read_grey(tmp_path / "j.dcm")
    assert decoded.shape == pixels.shape
    assert np.abs(decoded.astype(int) - max_scale_to_uint8(pixels).astype(int)).mean() < 3


def test_sixteen_bit_and_rgb_png(tmp_path):
    Image.fromarray((gradient().astype(np.uint16) * 200)).save(tmp_path / "p16.png")
    image = read_grey(tmp_path / "p16.png")
    assert image.dtype == np.uint8 and image.max() == 255
    rgb = np.stack([gradient()] * 3, axis=-1)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    assert np.array_equal(read_grey(tmp_path / "rgb.png"), gradient())


def test_resize_and_pad_keeps_aspect_and_centres():
    image = np.full((100, 50), 200, dtype=np.uint8)
    padded = resize_and_pad(image, 256)
    assert padded.shape == (256, 256)
    assert padded[:, :64].max() == 0 and padded[:, -64:].max() == 0 and padded[:, 64:192].min() == 200


def test_train_views_are_reproducible_and_eval_is_centre_crop():
    image = (np.random.default_rng(0).random((300, 260)) * 255).astype(np.uint8)
    spec = PreprocessSpec(resize=64, crop=56, train_augmentation="moco")
    a = preprocess(image, spec, train=True, seed=7)
    assert a.shape == (1, 56, 56) and 0 <= a.min() and a.max() <= 1
    assert torch_equal(a, preprocess(image, spec, train=True, seed=7))
    assert not torch_equal(a, preprocess(image, spec, train=True, seed=8))
    e = preprocess(image, spec, train=False)
    assert torch_equal(e, preprocess(image, spec, train=False))


def torch_equal(a, b):
    return bool((a == b).all())


def test_chexpert_adapter_reads_official_layout_and_maps_uncertain(tmp_path):
    write_chexpert(tmp_path)
    adapter = CheXpert.locate(DataRoots(tmp_path))
    records = adapter.records.set_index("image_id")
    assert list(records.index) == [
        "train/patient00001/study1/view1_frontal.jpg",
        "train/patient00002/study2/view1_frontal.jpg",
        "valid/patient64541/study1/view1_frontal.jpg",
    ]  # lateral dropped
    first = records.loc["train/patient00001/study1/view1_frontal.jpg"]
    # -1 -> 1 for Atelectasis, Edema, Pleural Effusion; -> 0 for Cardiomegaly, Consolidation
    assert (first["Atelectasis"], first["Edema"], first["Pleural Effusion"]) == (1, 1, 1)
    assert (first["Cardiomegaly"], first["Consolidation"]) == (0, 0)
    assert records.loc["train/patient00002/study2/view1_frontal.jpg", ["Atelectasis", "Edema"]].tolist() == [
        0,
        0,
    ]  # blanks
    assert records.loc["valid/patient64541/study1/view1_frontal.jpg", "source_split"] == "test"
    assert records["group"].tolist() == ["patient00001", "patient00002", "patient64541"]
    assert read_grey(records.iloc[0]["path"]).shape == (64, 48)


def test_chexpert_full_release_folder_is_found(tmp_path):
    write_chexpert(tmp_path, release="CheXpert-v1.0")
    adapter = CheXpert.locate(DataRoots(tmp_path))
    assert adapter.folder.name == "CheXpert-v1.0"
    assert adapter.records["image_id"].iloc[0] == "train/patient00001/study1/view1_frontal.jpg"


def test_rsna_adapter_keeps_all_boxes_and_negatives(tmp_path):
    write_rsna(tmp_path)
    records = RSNAPneumonia.locate(DataRoots(tmp_path)).records.set_index("image_id")
    assert len(records) == 2
    positive = records.loc["00436515-870c-4b36-a041-de91049b9ab4"]
    assert positive["Pneumonia"] == 1 and positive["boxes"] == [
        (264.0, 152.0, 213.0, 379.0),
        (562.0, 152.0, 256.0, 453.0),
    ]
    negative = records.loc["0004cfab-14fd-4e49-80ba-63a80b6bddd6"]
    assert negative["Pneumonia"] == 0 and negative["boxes"] == []
    # the MONOCHROME1 negative decodes with the same orientation as the MONOCHROME2 positive
    a, b = read_grey(negative["path"]), read_grey(positive["path"])
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.99 and a[:, -1].mean() > a[:, 0].mean()


@pytest.mark.parametrize("names", [("train.txt", "test.txt"), ("train_COVIDx9A.txt", "test_COVIDx9A.txt")])
def test_covidx_adapter_versions(tmp_path, names):
    write_covidx(tmp_path, names)
    adapter = COVIDx.locate(DataRoots(tmp_path))
    records = adapter.records
    assert records["label"].tolist() == [0, 1, 2, 2]
    assert records["source_split"].tolist() == ["train", "train", "train", "test"]
    assert all(read_grey(p).shape == (64, 48) for p in records["path"])
    assert names[0] in adapter.version() and "3-class" in adapter.version()


def test_covidx_binary_release_is_refused_with_explanation(tmp_path):
    write_covidx(tmp_path, labels=("negative", "negative", "positive"))
    with pytest.raises(DatasetNotFoundError, match="binary release"):
        COVIDx.locate(DataRoots(tmp_path)).records


def test_missing_dataset_message_names_layout_files_and_source(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        CheXpert.locate(DataRoots(tmp_path, {}, "--data-root"))
    message = str(info.value)
    assert "CheXpert-v1.0-small" in message and "train.csv" in message and "valid.csv" in message
    assert "stanfordaimi" in message and str(tmp_path) in message
    no_root = CheXpert.missing_message(DataRoots(None))
    assert "--data-root" in no_root and "MEDVLP_DATA_ROOT" in no_root


def test_data_root_resolution_order(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MEDVLP_DATA_ROOT", raising=False)
    (tmp_path / "medvlp-bench.toml").write_text('data_root = "/from/config"\n[datasets]\nchexpert = "/big/chexpert"\n')
    assert resolve_data_roots().root.as_posix() == "/from/config"
    monkeypatch.setenv("MEDVLP_DATA_ROOT", "/from/env")
    roots = resolve_data_roots()
    assert roots.root.as_posix() == "/from/env" and roots.for_dataset("chexpert").as_posix() == "/big/chexpert"
    assert resolve_data_roots("/from/cli").root.as_posix() == "/from/cli"
