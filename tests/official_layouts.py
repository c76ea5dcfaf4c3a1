"""Miniature replicas of the official dataset layouts, written here by hand (independently
of the demo generator) with pydicom and Pillow, the way the real files look."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image


def write_dicom(
    path: Path, pixels: np.ndarray, *, monochrome1: bool = False, jpeg: bool = False, bits: int = 8
) -> None:
    """A minimal CR DICOM file; ``jpeg`` stores JPEG Baseline (as SIIM-ACR does)."""
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.encaps import encapsulate
    from pydicom.uid import ExplicitVRLittleEndian, JPEGBaseline8Bit, SecondaryCaptureImageStorage, generate_uid

    path.parent.mkdir(parents=True, exist_ok=True)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[str(path)])
    meta.TransferSyntaxUID = JPEGBaseline8Bit if jpeg else ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "CR"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME1" if monochrome1 else "MONOCHROME2"
    ds.BitsAllocated = 8 if bits == 8 else 16
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    stored = (pixels.max() - pixels) if monochrome1 else pixels
    if jpeg:
        buffer = io.BytesIO()
        Image.fromarray(stored.astype(np.uint8)).save(buffer, format="JPEG", quality=95)
        ds.PixelData = encapsulate([buffer.getvalue()])
        ds["PixelData"].VR = "OB"
        ds.LossyImageCompression = "01"
    else:
        ds.PixelData = stored.astype(np.uint8 if bits == 8 else np.uint16).tobytes()
    ds.save_as(path, enforce_file_format=True)


def write_jpeg(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels.astype(np.uint8)).save(path, quality=95)


def gradient(h=64, w=48) -> np.ndarray:
    return np.tile(np.linspace(10, 250, w), (h, 1)).astype(np.uint8)


CHEXPERT_HEADER = (
    "Path,Sex,Age,Frontal/Lateral,AP/PA,No Finding,Enlarged Cardiomediastinum,Cardiomegaly,"
    "Lung Opacity,Lung Lesion,Edema,Consolidation,Pneumonia,Atelectasis,Pneumothorax,"
    "Pleural Effusion,Pleural Other,Fracture,Support Devices"
)


def write_chexpert(root: Path, release: str = "CheXpert-v1.0-small", image_shape: tuple[int, int] = (64, 48)) -> Path:
    """Two train patients (one lateral view), one valid patient; blanks and -1 labels.
    ``image_shape``: the images' size (the full-resolution release's are larger)."""
    folder = root / release
    # columns after AP/PA: NoFinding, EnlCM, Cardiomegaly, LungOpacity, LungLesion, Edema,
    # Consolidation, Pneumonia, Atelectasis, Pneumothorax, PleuralEffusion, PleuralOther, Fracture, SupportDevices
    train_rows = [
        f"{release}/train/patient00001/study1/view1_frontal.jpg,Female,68,Frontal,AP,,,-1.0,1.0,,-1.0,-1.0,,-1.0,0.0,-1.0,,,1.0",
        f"{release}/train/patient00001/study1/view2_lateral.jpg,Female,68,Lateral,,,,1.0,1.0,,1.0,1.0,,1.0,0.0,1.0,,,1.0",
        f"{release}/train/patient00002/study2/view1_frontal.jpg,Male,45,Frontal,PA,1.0,,0.0,,,,,,,0.0,,,,",
    ]
    valid_rows = [
        f"{release}/valid/patient64541/study1/view1_frontal.jpg,Male,73,Frontal,AP,0.0,1.0,1.0,1.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0"
    ]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.csv").write_text(CHEXPERT_HEADER + "\n" + "\n".join(train_rows) + "\n")
    (folder / "valid.csv").write_text(CHEXPERT_HEADER + "\n" + "\n".join(valid_rows) + "\n")
    for row in train_rows + valid_rows:
        write_jpeg(root / row.split(",")[0], gradient(*image_shape))
    return folder


def write_rsna(root: Path) -> Path:
    folder = root / "rsna-pneumonia-detection-challenge"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "stage_2_train_labels.csv").write_text(
        "patientId,x,y,width,height,Target\n"
        "0004cfab-14fd-4e49-80ba-63a80b6bddd6,,,,,0\n"
        "00436515-870c-4b36-a041-de91049b9ab4,264.0,152.0,213.0,379.0,1\n"
        "00436515-870c-4b36-a041-de91049b9ab4,562.0,152.0,256.0,453.0,1\n"
    )
    write_dicom(
        folder / "stage_2_train_images" / "0004cfab-14fd-4e49-80ba-63a80b6bddd6.dcm", gradient(), monochrome1=True
    )
    write_dicom(folder / "stage_2_train_images" / "00436515-870c-4b36-a041-de91049b9ab4.dcm", gradient())
    return folder


def write_covidx(root: Path, names=("train.txt", "test.txt"), labels=("normal", "pneumonia", "COVID-19")) -> Path:
    folder = root / "COVIDx"
    rows = {
        "train": [
            ("3", "a.png", labels[0], "rsna"),
            ("8", "b.jpg", labels[1], "cohen"),
            ("9", "c.png", labels[2], "sirm"),
        ],
        "test": [("11", "d.png", labels[2], "ricord")],
    }
    for split, name in zip(("train", "test"), names):
        lines = [" ".join(r) for r in rows[split]]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text("\n".join(lines) + "\n")
        for r in rows[split]:
            write_jpeg(folder / split / r[1], gradient())
    return folder
