"""Submissions: one folder per pretraining method under ``submissions/``.

    submissions/<name>/submission.yaml          metadata (validated, below)
    submissions/<name>/results/<suite>/<task>/  harness-produced result files + predictions

``run_benchmark.py --encoder CKPT --submission NAME`` writes the results and a metadata file
pre-filled with what the harness knows (architecture, checkpoint sha256, input contract);
the author fills in the rest. ``run_benchmark.py validate-submission submissions/NAME`` says
precisely what is missing or inconsistent.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .results import Result, read_result

SUBMISSIONS_DIR = Path(__file__).resolve().parents[1] / "submissions"
METADATA_FILE = "submission.yaml"
TODO = "TODO"
SHA256 = re.compile(r"^[0-9a-f]{64}$")
URL = re.compile(r"^(https?://\S+|n/a)$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Pretraining(Strict):
    images: Literal["real", "synthetic", "mixed", "imagenet", "none"]
    generator: Literal["sd21", "roentgen", "other"] | None = None  # for synthetic / mixed images
    reports: Literal["mimic-cxr", "synthetic", "none", "other"] = "mimic-cxr"
    mix_ratio: float | None = Field(default=None, ge=0, le=1)  # share of synthetic images when mixed
    dataset: str = "MIMIC-CXR-JPG 2.0.0"

    @field_validator("generator")
    @classmethod
    def _generator_needed(cls, value, info):
        images = info.data.get("images")
        if images in ("synthetic", "mixed") and value is None:
            raise ValueError("synthetic or mixed pretraining images must name their generator (sd21, roentgen, other)")
        return value

    def label(self) -> str:
        """The leaderboard's "Pretraining images" cell; pretraining on synthetic reports (e.g. the
        SynCXR recipe's purely synthetic pairs) adds ", synthetic reports"."""
        reports = ", synthetic reports" if self.reports == "synthetic" else ""
        if self.images in ("synthetic", "mixed"):
            generator = {"sd21": "SD 2.1", "roentgen": "RoentGen", "other": "synthetic (other generator)"}[
                self.generator or "other"
            ]
            images = f"{generator}" if self.images == "synthetic" else f"mixed ({generator}, {self.mix_ratio})"
            return images + reports
        return self.images + reports


class Checkpoint(Strict):
    sha256: str
    url: str  # where it can be obtained, or "n/a" for spec encoders (random:...)

    @field_validator("sha256")
    @classmethod
    def _sha(cls, value):
        if not SHA256.match(value):
            raise ValueError("must be 64 lower-case hex characters (sha256 of the checkpoint file)")
        return value


class InputContractModel(Strict):
    mean: list[float]
    std: list[float]
    channels: int
    input_size: int | None = None


class SubmissionMetadata(Strict):
    schema_version: Literal[1] = 1
    name: str  # folder name
    method: str  # display name, e.g. "MGCA"
    method_id: str = Field(pattern=r"^[a-z0-9_-]+$")  # groups rows of one method (deltas vs real images)
    paper: str
    code: str
    architecture: str
    pretraining: Pretraining
    checkpoint: Checkpoint
    licence: str
    contact: str
    input_contract: InputContractModel
    encoder_spec: str  # how the harness was invoked (--encoder)
    baseline: bool = False  # measured reference rows such as random init
    notes: str = ""

    @field_validator("paper", "code")
    @classmethod
    def _url(cls, value):
        if not URL.match(value):
            raise ValueError("must be an http(s) URL, or 'n/a'")
        return value

    @field_validator("method", "licence", "contact", "architecture")
    @classmethod
    def _filled(cls, value):
        if not value.strip() or TODO in value:
            raise ValueError("must be filled in")
        return value


def metadata_path(folder: Path) -> Path:
    return Path(folder) / METADATA_FILE


def results_dir(folder: Path, suite: str) -> Path:
    return Path(folder) / "results" / suite


def write_metadata_template(folder: Path, name: str, loaded, spec: str) -> Path:
    """Create (or update the harness-known fields of) a submission's metadata file."""
    path = metadata_path(folder)
    existing = yaml.safe_load(path.read_text()) if path.is_file() else {}
    encoder = loaded.encoder
    contract = encoder.contract.to_dict()
    known = {
        "name": name,
        "architecture": encoder.arch,
        "input_contract": {k: (list(v) if isinstance(v, tuple) else v) for k, v in contract.items()},
        "encoder_spec": Path(spec).name if Path(spec).suffix else spec,
    }
    checkpoint = dict(existing.get("checkpoint") or {})
    checkpoint["sha256"] = loaded.sha256
    checkpoint.setdefault("url", TODO if Path(spec).suffix else "n/a")
    template = {
        "schema_version": 1,
        "method": TODO,
        "method_id": re.sub(r"[^a-z0-9_-]+", "-", name.lower()),
        "paper": TODO,
        "code": TODO,
        "pretraining": {
            "images": TODO,
            "generator": None,
            "reports": "mimic-cxr",
            "mix_ratio": None,
            "dataset": "MIMIC-CXR-JPG 2.0.0",
        },
        "licence": TODO,
        "contact": TODO,
        "baseline": False,
        "notes": "",
    }
    merged = {**template, **existing, **known, "checkpoint": checkpoint}
    path.parent.mkdir(parents=True, exist_ok=True)
    from .atomic import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(merged, sort_keys=False, allow_unicode=True))
    return path


def load_metadata(folder: Path) -> SubmissionMetadata:
    return SubmissionMetadata.model_validate(yaml.safe_load(metadata_path(folder).read_text()))


def submission_results(folder: Path, suite: str) -> list[tuple[Result, Path]]:
    base = results_dir(folder, suite)
    pairs = []
    for path in sorted(base.glob("*/*.json")):
        pairs.append((read_result(path), base))
    return pairs


def list_submissions(root: Path = SUBMISSIONS_DIR) -> list[Path]:
    return sorted(p.parent for p in Path(root).glob(f"*/{METADATA_FILE}"))


# ---------------------------------------------------------------------------- validation
COMPAT_FLAGS = (
    "mgca_bn_drift",
    "mgca_det_map",
    "allow_partial_load",
    "zeroshot_threshold_on_test",
    "skip_bad_rows",
    "yolo_semantics",
    "dense_geometry",
)  # the last two: --yolo-semantics mmdet, --geometry letterbox


def expected_units(suite: str, zeroshot: bool = False) -> set[tuple[str, int, int]]:
    """Every (task, fraction, seed) a complete submission has. Zero-shot units (no training:
    fraction 100, seed 0 only) are expected only when ``zeroshot`` is true, i.e. when the
    submission has any zero-shot result: image-only encoders have no text side, so the
    zero-shot tasks do not apply to them (the harness skips them with a note)."""
    from .registry import all_tasks

    seeds = (0, 1, 2) if suite == "paper" else (0,)
    units = {(t.id, f, s) for t in all_tasks().values() if t.family != "zeroshot" for f in t.fractions for s in seeds}
    if zeroshot:
        units |= {(t.id, 100, 0) for t in all_tasks().values() if t.family == "zeroshot"}
    return units


def current_manifest_hashes() -> dict[str, str]:
    """sha256 of each committed manifest, by dataset."""
    from .splits import read_manifest
    from .suites import REPO_MANIFESTS

    return {
        p.name.removesuffix(".csv.gz"): read_manifest(p, p.name).sha256 for p in sorted(REPO_MANIFESTS.glob("*.csv.gz"))
    }


def validate_submission(
    folder: Path, suites: tuple[str, ...] | None = None, *, require_complete: bool = True, name_outdated: bool = True
) -> list[str]:
    """Every problem found, as one actionable line each (empty list = valid).
    ``require_complete=False`` skips only the missing-units check (partial runs, tests).
    Each result produced under an older (or newer) protocol version of its family than the
    current one (:mod:`benchmark.protocol_versions`) is named in its own line;
    ``name_outdated=False`` leaves those lines out, for the leaderboard, which leaves such
    results out of its tables and lists them in its own note."""
    from .protocol_versions import version_problem
    from .registry import all_tasks
    from .result_checks import ResultCheckError, checked_scores

    folder = Path(folder)
    problems: list[str] = []
    if not metadata_path(folder).is_file():
        return [f"{metadata_path(folder)} is missing: run with --submission {folder.name} to create it"]
    try:
        metadata = load_metadata(folder)
    except ValidationError as error:
        for item in error.errors():
            where = ".".join(str(p) for p in item["loc"])
            problems.append(f"{METADATA_FILE}: {where}: {item['msg']}")
        metadata = None
    except yaml.YAMLError as error:
        return [f"{METADATA_FILE} is not valid YAML: {error}"]
    if metadata is not None and metadata.name != folder.name:
        problems.append(f"{METADATA_FILE}: name {metadata.name!r} differs from the folder name {folder.name!r}")
    available = [p.name for p in sorted((folder / "results").glob("*")) if p.is_dir()]
    suites = suites or tuple(available)
    if not suites:
        problems.append(
            f"no results under {folder / 'results'}: run `run_benchmark.py --encoder ... --submission {folder.name}`"
        )
    manifests = current_manifest_hashes()
    tasks = all_tasks()
    raw = yaml.safe_load(metadata_path(folder).read_text()) or {}
    declared_sha = (raw.get("checkpoint") or {}).get("sha256")
    for suite in suites:
        base = results_dir(folder, suite)
        pairs = []
        for path in sorted(base.glob("*/*.json")):
            try:
                result = read_result(path)
            except Exception as error:
                problems.append(
                    f"{path}: not a readable result file ({type(error).__name__}: {str(error).splitlines()[0][:120]})"
                )
                continue
            if path.name != f"{result.unit.name}.json" or path.parent.name != result.unit.task:
                problems.append(
                    f"{path}: holds the unit {result.unit.name}, "
                    f"which belongs in {result.unit.task}/{result.unit.name}.json"
                )
                continue
            pairs.append((result, base))
        units = [(r.unit.task, r.unit.fraction, r.unit.seed) for r, _ in pairs]
        have = set(units)
        expected = expected_units(suite, zeroshot=any(r.family == "zeroshot" for r, _ in pairs))
        missing = sorted(expected - have)
        if missing and require_complete:
            listing = ", ".join(f"{t} {f}% seed {s}" for t, f, s in missing[:12])
            more = f" (+{len(missing) - 12} more)" if len(missing) > 12 else ""
            problems.append(f"{suite}: {len(missing)} missing unit(s): {listing}{more}")
        extra = sorted(have - expected)
        if extra:
            listing = ", ".join(f"{t} {f}% seed {s}" for t, f, s in extra[:12])
            problems.append(
                f"{suite}: {len(extra)} unexpected unit(s) that the {suite} suite does not define: {listing} "
                "(they would be averaged into the cells; remove them)"
            )
        by_dataset: dict[str, set[str]] = {}
        for result, _ in pairs:
            name = f"{suite}/{result.unit.task}/{result.unit.name}"
            if result.suite != suite:
                problems.append(f"{name}: produced on the {result.suite!r} suite, filed under {suite!r}")
            other_protocol = version_problem(name, result)
            if other_protocol and name_outdated:
                problems.append(other_protocol)
            if declared_sha and result.encoder.get("sha256") != declared_sha:
                problems.append(
                    f"{name}: checkpoint sha256 {str(result.encoder.get('sha256'))[:12]}... "
                    f"differs from the declared {declared_sha[:12]}..."
                )
            if result.flags.get("limit") is not None:
                problems.append(f"{name}: produced with --limit {result.flags['limit']} (debug runs are not accepted)")
            for flag in COMPAT_FLAGS:
                if result.flags.get(flag):
                    problems.append(
                        f"{name}: produced with the compatibility switch {flag} (not accepted on the leaderboard)"
                    )
            digest = result.data.get("manifest_sha256")
            by_dataset.setdefault(result.dataset, set()).add(digest)
            if suite == "paper" and result.dataset in manifests and digest != manifests[result.dataset]:
                problems.append(
                    f"{name}: split manifest {str(digest)[:12]}... no longer matches the current {result.dataset} "
                    f"manifest {manifests[result.dataset][:12]}...: rerun this unit"
                )
            task = tasks.get(result.unit.task)
            if task is None:
                problems.append(f"{name}: unknown task {result.unit.task!r}")
                continue
            try:
                checked_scores(task, result, base)
            except ResultCheckError as error:
                problems.append(str(error))
        for dataset, digests in by_dataset.items():
            if len(digests) > 1:
                problems.append(f"{suite}: results on {dataset} use {len(digests)} different split manifests")
    return problems
