"""Prompt sets: versioned JSON data files, recorded (name, version, sha256) in every result.

Schema::

    {"name": "chexzero_pairs", "version": "1", "description": "...",
     "classes": {"<class key>": {"positive": ["..."], "negative": ["..."]}, ...}}

Files live in ``benchmark/data/prompts/`` and are referred to as ``<name>-v<version>``
(the file stem). Changing a prompt means a new version (a new file), never an edit: the
result's sha256 would no longer match the committed file and old results stay explainable.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError

PROMPTS_DIR = Path(__file__).resolve().parents[1] / "data" / "prompts"


@dataclass(frozen=True)
class PromptSet:
    name: str
    version: str
    sha256: str
    path: Path
    classes: dict  # class key -> {"positive": [...], "negative": [...]}

    def pair(self, key: str) -> tuple[list[str], list[str]]:
        if key not in self.classes:
            raise ConfigError(
                f"prompt set {self.name}-v{self.version} has no prompts for class {key!r} "
                f"(it has {', '.join(self.classes)})"
            )
        entry = self.classes[key]
        return list(entry["positive"]), list(entry["negative"])

    def describe(self) -> dict:
        return {"name": self.name, "version": self.version, "sha256": self.sha256, "file": self.path.name}


def available() -> list[str]:
    return sorted(p.stem for p in PROMPTS_DIR.glob("*.json"))


def load_prompt_set(ref: str | Path) -> PromptSet:
    """``ref``: a set id (``chexzero_pairs-v1``) or a path to a JSON file of the same schema."""
    path = Path(ref)
    if not path.suffix:
        path = PROMPTS_DIR / f"{ref}.json"
    if not path.is_file():
        raise ConfigError(f"prompt set {ref!r} not found ({path}); available: {', '.join(available())}")
    raw = path.read_bytes()
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ConfigError(f"prompt set {path}: not valid JSON ({error})") from None
    missing = {"name", "version", "classes"} - set(data)
    if missing:
        raise ConfigError(f"prompt set {path}: missing field(s) {sorted(missing)}")
    for key, entry in data["classes"].items():
        if not isinstance(entry, dict) or not entry.get("positive") or not entry.get("negative"):
            raise ConfigError(
                f"prompt set {path}: class {key!r} needs non-empty 'positive' and 'negative' prompt lists"
            )
    return PromptSet(
        str(data["name"]), str(data["version"]), hashlib.sha256(raw).hexdigest(), path, dict(data["classes"])
    )
