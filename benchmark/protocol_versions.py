"""Protocol versions: which version of its family's protocol a result was produced under.

Numbers are comparable only between results of the same protocol version of a family. The
version of a family rises when its training or evaluation changes in a way that changes the
numbers (geometry, target assignment, loss, scoring, augmentation), not when bookkeeping
changes. Every result records its family's version (``Result.protocol_version``); files
written before versions were recorded lack the field and count as version 1, which is what
they were produced under.

What a version means:

- **v1** (every family until 2026-12-01; still current for classification and zero-shot):
  segmentation and detection letterbox the image (longer side resized, zero-padded to a
  centred square); detection trains mmdet's stock YOLOv3 (its ``GridAssigner`` target
  assignment and loss weights) and ranks boxes by objectness x class score; segmentation
  trains with albumentations' default shift-scale-rotate (shift limit 0.0625, reflected
  border).
- **v2** (segmentation and detection from 2026-12-01): the reference's (MGCA's) geometry and
  semantics: the image is stretched to the square input (boxes and masks follow), detection
  trains YOLOv3 with the reference's per-level target assignment and loss and ranks boxes by
  objectness alone, and segmentation augments with the reference's shift-scale-rotate (no
  shift, constant zero border).

Who uses it: :func:`benchmark.submissions.validate_submission` names every result of another
version, the leaderboard leaves such results out of its tables (listing them in a note, never
silently), and the runner never reuses a finished unit of another version.
"""

from __future__ import annotations

PROTOCOL_VERSIONS: dict[str, int] = {
    "classification": 1,
    "zeroshot": 1,
    "segmentation": 2,
    "detection": 2,
}

VERSION_OF_UNVERSIONED_RESULTS = 1  # files written before results recorded their version

# What changed when a family moved to a version: (family, version) -> summary, for messages.
CHANGES: dict[tuple[str, int], str] = {
    ("segmentation", 2): "the reference's stretch resize instead of letterbox, and its augmentation "
    "(shift 0, constant border) instead of shift 0.0625 with a reflected border",
    ("detection", 2): "the reference's stretch resize instead of letterbox, the reference's YOLOv3 target "
    "assignment and loss instead of mmdet's stock ones, and boxes ranked by objectness "
    "instead of objectness x class score",
}


def current_version(family: str) -> int:
    """The protocol version this harness produces for ``family``."""
    if family not in PROTOCOL_VERSIONS:
        raise KeyError(f"task family {family!r} has no protocol version: add it to PROTOCOL_VERSIONS in {__name__}")
    return PROTOCOL_VERSIONS[family]


def result_version(result) -> int:
    """The protocol version a result was produced under (an unversioned file: v1)."""
    version = getattr(result, "protocol_version", None)
    return VERSION_OF_UNVERSIONED_RESULTS if version is None else int(version)


def is_current(result) -> bool:
    """Whether ``result`` was produced under its family's current protocol version (a family
    this harness does not know is not judged here; validation names the unknown task)."""
    family = result.family
    return family not in PROTOCOL_VERSIONS or result_version(result) == PROTOCOL_VERSIONS[family]


def changes_since(family: str, version: int) -> str:
    """What changed in ``family``'s protocol after ``version``, up to the current one."""
    steps = [CHANGES[(family, v)] for v in range(version + 1, current_version(family) + 1) if (family, v) in CHANGES]
    return "; ".join(steps) or "see benchmark/protocol_versions.py"


def version_problem(name: str, result) -> str | None:
    """One actionable line when ``result`` is not of its family's current protocol version
    (``name`` says which unit, e.g. ``demo/siim_seg/siim_seg_frac1_seed0``), else None."""
    if is_current(result):
        return None
    family, version, current = result.family, result_version(result), current_version(result.family)
    if version < current:
        return (
            f"{name}: produced under {family} protocol v{version}, current v{current} "
            f"({changes_since(family, version)}); rerun the unit"
        )
    return (
        f"{name}: produced under {family} protocol v{version}, newer than this harness's v{current}; "
        "validate it with the harness version that produced it (update medvlp-bench)"
    )
