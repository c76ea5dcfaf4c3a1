"""Where datasets live on this machine.

Resolution order (first hit wins):
1. ``--data-root`` on the command line;
2. the environment variable ``MEDVLP_DATA_ROOT``;
3. a config file: ``./medvlp-bench.toml``, else ``~/.config/medvlp-bench/config.toml``::

       data_root = "/data/cxr"          # folder that holds the datasets' official folders
       [datasets]                       # optional per-dataset overrides
       chexpert = "/mnt/big/CheXpert-v1.0"

Each dataset adapter then looks for its official folder (for example
``CheXpert-v1.0-small``) under the data root, unless a per-dataset override names it.
Where a dataset has several official releases, which one to read is chosen here too
(``--chexpert-release``: CheXpert's full-resolution ``CheXpert-v1.0`` or
``CheXpert-v1.0-small``, see :mod:`benchmark.datasets.chexpert`).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError

ENV_VAR = "MEDVLP_DATA_ROOT"
CONFIG_FILES = (Path("medvlp-bench.toml"), Path.home() / ".config" / "medvlp-bench" / "config.toml")


@dataclass(frozen=True)
class DataRoots:
    root: Path | None
    overrides: dict[str, Path] = field(default_factory=dict)
    source: str = "unset"  # where the root came from, for messages
    # --skip-bad-rows: adapters leave out images whose label-file rows are bad (listed in a
    # warning and in every result) instead of stopping with a LabelFileError
    skip_bad_rows: bool = False
    # --chexpert-release: "auto" (the full-resolution release when present, else the small
    # one), "full" (CheXpert-v1.0 only) or "small" (CheXpert-v1.0-small only)
    chexpert_release: str = "auto"

    def for_dataset(self, name: str) -> Path | None:
        """The explicit folder of ``name`` if configured, else the data root (or None)."""
        return self.overrides.get(name, self.root)


def _read_config(path: Path) -> dict:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"Config file {path} is not valid TOML: {error}") from error


def resolve_data_roots(cli_root: str | Path | None = None) -> DataRoots:
    config: dict = {}
    config_path = None
    for candidate in CONFIG_FILES:
        if candidate.is_file():
            config, config_path = _read_config(candidate), candidate
            break
    overrides = {name: Path(p).expanduser() for name, p in (config.get("datasets") or {}).items()}
    if cli_root is not None:
        return DataRoots(Path(cli_root).expanduser(), overrides, "--data-root")
    if os.environ.get(ENV_VAR):
        return DataRoots(Path(os.environ[ENV_VAR]).expanduser(), overrides, f"${ENV_VAR}")
    if config.get("data_root"):
        return DataRoots(Path(config["data_root"]).expanduser(), overrides, str(config_path))
    return DataRoots(None, overrides, "unset")
