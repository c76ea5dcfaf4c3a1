"""MIMIC-CXR report sections and (image, report) pairs."""

import pytest

from recipes.mimic import extract_sections, load_pairs

REPORT = """                                 FINAL REPORT
 EXAMINATION:  CHEST (PA AND LAT)
 
 INDICATION:  ___-year-old woman with chest pain.
 
 COMPARISON:  ___.
 
 FINDINGS: 
 
 Linear opacity at the right lung base is compatible with subsegmental
 atelectasis. No focal consolidation.
 
 IMPRESSION: 
 
 Right basilar atelectasis.
"""


def test_sections_of_an_official_style_report():
    sections = extract_sections(REPORT)
    assert sections["impression"] == "Right basilar atelectasis."
    assert (
        sections["findings"]
        == "Linear opacity at the right lung base is compatible with subsegmental atelectasis. No focal consolidation."
    )
    assert sections["indication"] == "___-year-old woman with chest pain."
    assert sections["examination"] == "CHEST (PA AND LAT)"


def test_combined_and_synonym_headers_and_headerless_reports():
    combined = extract_sections(" FINAL REPORT\n FINDINGS AND IMPRESSION:\n Normal chest.\n")
    assert combined["findings"] == combined["impression"] == "Normal chest."
    assert extract_sections(" CONCLUSION: No acute process.\n")["impression"] == "No acute process."
    headerless = extract_sections("PA and lateral views.\n\nLungs are clear.")
    assert headerless["impression"] == "Lungs are clear."


def test_pairs_keep_frontal_views_with_reports(demo_root):
    pairs = load_pairs(demo_root)
    assert len(pairs) > 0 and set(pairs["ViewPosition"]) <= {"PA", "AP"}
    assert pairs["impression"].str.split().str.len().min() >= 3
    assert all(__import__("os").path.isfile(p) for p in pairs["image_path"])
    everything = load_pairs(demo_root, frontal_only=False, min_tokens=0)
    assert "LATERAL" in set(everything["ViewPosition"]) and len(everything) > len(pairs)


def test_missing_mimic_is_a_clear_error(tmp_path):
    from benchmark.errors import DatasetNotFoundError

    with pytest.raises(DatasetNotFoundError, match="physionet.org"):
        load_pairs(tmp_path)
