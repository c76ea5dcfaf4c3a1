"""``--input-contract``: a user's normalisation for a checkpoint that does not state its own
(CheXzero has OpenAI CLIP's keys but its own statistics), recorded with its origin."""

from __future__ import annotations

import json

import pytest
import torch

from benchmark.errors import ConfigError
from models.encoder import CONTRACT_PRESETS, InputContract, parse_contract
from models.loading import load_encoder


def test_presets_and_json_parse_to_the_stated_statistics():
    chexzero = parse_contract("chexzero")
    assert chexzero.mean == pytest.approx((0.3979906,) * 3, abs=1e-7)  # 101.48761 / 255
    assert chexzero.std == pytest.approx((0.3272135,) * 3, abs=1e-7)  # 83.43944 / 255
    assert parse_contract("imagenet") == InputContract.imagenet()
    assert parse_contract('{"mean": [0.4], "std": [0.3], "channels": 3}') == InputContract(
        mean=(0.4,), std=(0.3,), channels=3
    )
    assert set(CONTRACT_PRESETS) == {"cxr", "imagenet", "clip", "chexzero", "none"}
    with pytest.raises(ConfigError, match="expected a preset .*chexzero"):
        parse_contract("chexpert")
    with pytest.raises(ConfigError, match="unknown field"):
        parse_contract('{"mean": [0.4], "scale": 2}')


def test_a_user_contract_is_applied_and_recorded(capsys):
    from benchmark.cli import main

    loaded = load_encoder("random:resnet_tiny", input_contract=parse_contract("chexzero"))
    grey = torch.full((1, 1, 8, 8), 101.48761 / 255)
    assert loaded.encoder.prepare(grey).abs().max() < 1e-6  # the CheXzero mean maps to 0
    assert loaded.load_report["contract_origin"] == "user (--input-contract)"
    default = load_encoder("random:resnet_tiny")
    assert default.load_report["contract_origin"] == "architecture default"

    assert main(["inspect", "--encoder", "random:resnet_tiny", "--input-contract", "chexzero", "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["contract"]["mean"] == pytest.approx([101.48761 / 255] * 3)
    assert facts["contract"]["origin"] == "user (--input-contract)"
