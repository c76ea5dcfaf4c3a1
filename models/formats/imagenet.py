"""``imagenet:<arch>[@<WEIGHTS>]``: torchvision's ImageNet weights, read only from local
files, never downloaded: ``$MEDVLP_IMAGENET_WEIGHTS`` (a file, or a folder holding the
torchvision file) or ``torch.hub.get_dir()/checkpoints/<torchvision file name>``. The
input contract uses the ImageNet mean/std."""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torchvision

from benchmark.errors import CheckpointError, ConfigError
from models.architectures.resnet import RESNET_CONFIGS
from models.checkpoint_io import read_checkpoint, sha256_file
from models.encoder import InputContract
from models.formats.base import LoadOptions, SourceResult, SpecSource
from models.state_loading import encoder_from_state_dict, find_state_dict, strip_ddp

ENV_VAR = "MEDVLP_IMAGENET_WEIGHTS"


def imagenet_archs() -> list[str]:
    return [n for n, c in RESNET_CONFIGS.items() if c.tv_weights]


def torchvision_weights(arch: str, variant: str | None):
    cfg = RESNET_CONFIGS.get(arch)
    if cfg is None or not cfg.tv_weights:
        raise ConfigError(
            f"imagenet:{arch}: no torchvision ImageNet weights for this architecture; "
            f"available: {', '.join('imagenet:' + a for a in imagenet_archs())}"
        )
    enum = getattr(torchvision.models, cfg.tv_weights)
    if variant is None:
        return enum.DEFAULT
    try:
        return enum[variant]
    except KeyError:
        raise ConfigError(
            f"imagenet:{arch}@{variant}: unknown weights; available: "
            f"{', '.join(w.name for w in enum)} (default {enum.DEFAULT.name})"
        ) from None


def expected_path(file_name: str) -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / file_name


class ImageNet(SpecSource):
    scheme = "imagenet"
    description = "imagenet:<arch>[@WEIGHTS] - torchvision ImageNet weights from local files"

    def load(self, spec: str, opts: LoadOptions) -> SourceResult:
        body = spec.split(":", 1)[1].strip()
        arch, _, variant = body.partition("@")
        if opts.arch is not None and opts.arch != arch:
            raise ConfigError(f"{spec!r} names architecture {arch!r} but --arch {opts.arch} was given; drop one")
        weights = torchvision_weights(arch, variant or None)
        url = weights.url
        file_name = url.rsplit("/", 1)[-1]
        env = os.environ.get(ENV_VAR)
        if env:
            path = Path(env).expanduser()
            if path.is_dir():
                path = path / file_name
            if not path.is_file():
                raise CheckpointError(
                    f"imagenet:{arch}: {ENV_VAR} is set to {env!r} but {path} does not exist. "
                    f"Point it at torchvision's {file_name} (from {url}) or a folder holding it, "
                    f"or unset it to use {expected_path(file_name)}."
                )
        else:
            path = expected_path(file_name)
            if not path.is_file():
                raise CheckpointError(
                    f"imagenet:{arch} needs torchvision's ImageNet weights, which the benchmark "
                    f"never downloads. Place the file {file_name} at {path} (download it from "
                    f"{url} on a machine with internet access, e.g. "
                    f"`mkdir -p {path.parent} && curl -L -o {path} {url}`), "
                    f"or set {ENV_VAR} to the file's path."
                )
        digest = sha256_file(path)
        hash_prefix = file_name.rsplit(".", 1)[0].rsplit("-", 1)[-1]
        hash_ok = digest.startswith(hash_prefix)
        if not env and not hash_ok:
            raise CheckpointError(
                f"imagenet:{arch}: {path} does not have the expected content (its sha256 "
                f"{digest[:16]}... should start with {hash_prefix}, the hash in torchvision's "
                f"file name); it may be truncated or a different file. Download it again from {url}."
            )
        obj, how = read_checkpoint(path, trust_pickle=opts.trust_pickle)
        found = find_state_dict(obj)
        if found is None:
            raise CheckpointError(f"{path}: expected a torchvision ResNet state dict, found {type(obj).__name__}")
        encoder, report = encoder_from_state_dict(
            strip_ddp(found[0]),
            where=f"{path} (imagenet:{arch})",
            arch=arch,
            allow_partial=opts.allow_partial,
            contract=InputContract.imagenet(),
            user_contract=opts.input_contract,
        )
        report.update(
            weights_file=str(path),
            weights_sha256=digest,
            weights_url=url,
            weights_name=weights.name,
            hash_matches_torchvision=hash_ok,
            read_with=how,
        )
        return SourceResult(encoder, f"imagenet:{arch}@{weights.name}", self.scheme, "imagenet", report)


SOURCE = ImageNet()  # this module's plug-in (benchmark/plugins.py)
