"""Split MIMIC-CXR free-text reports into sections (IMPRESSION, FINDINGS, ...).

A re-implementation of the idea of MIT-LCP's ``mimic-cxr`` section extraction (not a copy):
a section header is an upper-case phrase at the start of a line followed by a colon
(``" FINDINGS:"``, ``"IMPRESSION:"``); its text runs to the next header. Header names are
normalised (``"FINDINGS AND IMPRESSION"`` -> both, ``"CONCLUSION"`` -> impression,
``"FINDING"`` -> findings, ...). Reports without an IMPRESSION header fall back to the last
paragraph, as the MIT-LCP rules do for header-less reports.
"""

from __future__ import annotations

import re
from pathlib import Path

HEADER = re.compile(r"(?m)^[ \t]*([A-Z][A-Z /&()\-,]{2,60}):")
NORMALISE = {
    "IMPRESSION": "impression",
    "IMPRESSIONS": "impression",
    "CONCLUSION": "impression",
    "CONCLUSIONS": "impression",
    "SUMMARY": "impression",
    "FINDINGS": "findings",
    "FINDING": "findings",
    "FINDINGS AND IMPRESSION": "findings_impression",
    "FINDINGS/IMPRESSION": "findings_impression",
    "IMPRESSION AND FINDINGS": "findings_impression",
    "INDICATION": "indication",
    "HISTORY": "indication",
    "CLINICAL HISTORY": "indication",
    "REASON FOR EXAMINATION": "indication",
    "COMPARISON": "comparison",
    "COMPARISONS": "comparison",
    "TECHNIQUE": "technique",
    "EXAMINATION": "examination",
    "EXAM": "examination",
    "WET READ": "wet_read",
    "NOTIFICATION": "notification",
    "RECOMMENDATION(S)": "recommendations",
    "RECOMMENDATIONS": "recommendations",
}


def clean(text: str) -> str:
    """Collapse whitespace (reports are hard-wrapped at ~80 columns)."""
    return re.sub(r"\s+", " ", text).strip()


def extract_sections(text: str) -> dict[str, str]:
    """Section name (normalised, lower case) -> cleaned text. ``FINAL REPORT`` banners and
    text before the first header are kept under ``preamble``."""
    sections: dict[str, str] = {}
    matches = list(HEADER.finditer(text))
    if not matches or matches[0].start() > 0:
        head = text[: matches[0].start()] if matches else text
        head = clean(head.replace("FINAL REPORT", ""))
        if head:
            sections["preamble"] = head
    for k, match in enumerate(matches):
        end = matches[k + 1].start() if k + 1 < len(matches) else len(text)
        name = NORMALISE.get(clean(match.group(1)), clean(match.group(1)).lower().replace(" ", "_"))
        body = clean(text[match.end() : end])
        if name == "findings_impression":
            sections.setdefault("findings", body)
            sections.setdefault("impression", body)
            continue
        if body:
            sections[name] = (sections[name] + " " + body) if name in sections else body
    if "impression" not in sections and "findings" not in sections:
        paragraphs = [clean(p) for p in re.split(r"\n\s*\n", text) if clean(p) and "FINAL REPORT" not in p]
        if paragraphs:
            sections["impression"] = re.sub(r"^[A-Z ]+:\s*", "", paragraphs[-1])
    return sections


def read_report(path: str | Path) -> dict[str, str]:
    return extract_sections(Path(path).read_text(encoding="utf-8", errors="replace"))
