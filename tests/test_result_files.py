"""A result's files: the predictions file has the same bytes whoever writes it, wherever."""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd

from benchmark.results import read_result, write_result

COMMITTED = Path(__file__).resolve().parents[1] / "submissions" / "demo-random-init" / "results" / "demo"


def test_predictions_file_bytes_depend_only_on_the_predictions(tmp_path):
    json_path = COMMITTED / "rsna_cls" / "rsna_cls_frac100_seed0.json"
    predictions = pd.read_csv(json_path.with_name("rsna_cls_frac100_seed0.predictions.csv.gz"))
    written = []
    for name in ("a", "somewhere-else"):
        result = read_result(json_path)
        write_result(tmp_path / name, result, predictions)
        written.append((tmp_path / name / "rsna_cls" / "rsna_cls_frac100_seed0.predictions.csv.gz").read_bytes())
    assert written[0] == written[1]
    header = written[0][:10]
    assert header[:2] == b"\x1f\x8b"
    assert header[3] & 0x08 == 0, "the gzip header names a file (FNAME flag set)"
    assert header[4:8] == b"\x00\x00\x00\x00", "the gzip header carries a time"
    assert gzip.decompress(written[0]).decode().splitlines()[0] == ",".join(predictions.columns)
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "a" / "rsna_cls" / "rsna_cls_frac100_seed0.predictions.csv.gz"), predictions
    )
