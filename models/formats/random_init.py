"""``random:<arch>[@<seed>]``: a seeded random initialisation of a registered
architecture (the "Random Init" baseline). Same arch and seed -> identical weights;
the seed defaults to 0."""

from __future__ import annotations

from benchmark.errors import ConfigError
from models.architectures import build_arch
from models.encoder import merge_contract
from models.formats.base import LoadOptions, SourceResult, SpecSource

DEFAULT_SEED = 0


def parse_random_spec(spec: str) -> tuple[str, int]:
    body = spec.split(":", 1)[1].strip()
    arch, _, seed_text = body.partition("@")
    if not arch:
        raise ConfigError(f"{spec!r}: expected random:<arch> or random:<arch>@<seed>, e.g. random:resnet50@1")
    if not seed_text:
        return arch, DEFAULT_SEED
    try:
        seed = int(seed_text)
    except ValueError:
        raise ConfigError(f"{spec!r}: the seed after '@' must be an integer, got {seed_text!r}") from None
    if seed < 0:
        raise ConfigError(f"{spec!r}: the seed must be non-negative")
    return arch, seed


class RandomInit(SpecSource):
    scheme = "random"
    description = "random:<arch>[@seed] - seeded random initialisation"

    def load(self, spec: str, opts: LoadOptions) -> SourceResult:
        arch, seed = parse_random_spec(spec)
        if opts.arch is not None and opts.arch != arch:
            raise ConfigError(f"{spec!r} names architecture {arch!r} but --arch {opts.arch} was given; drop one")
        encoder = build_arch(arch, seed=seed)
        encoder.contract = merge_contract(encoder.contract, opts.input_contract)
        report = {
            "n_expected": 0,
            "n_loaded": 0,
            "missing": [],
            "unexpected": [],
            "arch": arch,
            "seed": seed,
            "note": "random initialisation, no weights loaded",
        }
        return SourceResult(encoder, f"random:{arch}@{seed}", self.scheme, "random_init", report)


SOURCE = RandomInit()  # this module's plug-in (benchmark/plugins.py)
