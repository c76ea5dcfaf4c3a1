"""The one registration style (benchmark/plugins.py): a plug-in is one module of its package."""

from __future__ import annotations

import importlib
import sys
import textwrap

import pytest

from benchmark.plugins import discover, module_names


@pytest.fixture
def plugin_package(tmp_path, monkeypatch):
    """A package ``fakeplugins`` with two plug-ins, a helper and a private module."""
    package = tmp_path / "fakeplugins"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "alpha.py").write_text("THING = {'name': 'a', 'value': 1}\n")
    (package / "beta.py").write_text("THING = {'name': 'b', 'value': 2}\n")
    (package / "helpers.py").write_text("VALUE = 3  # no THING: a helper, not a plug-in\n")
    (package / "_private.py").write_text("THING = {'name': 'hidden', 'value': 4}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield package
    for name in [n for n in sys.modules if n == "fakeplugins" or n.startswith("fakeplugins.")]:
        del sys.modules[name]


def test_discover_finds_each_modules_constant_by_key_and_skips_helpers(plugin_package):
    package = importlib.import_module("fakeplugins")
    assert module_names(package) == ["alpha", "beta", "helpers"]
    found = discover(package, "THING", key=lambda thing: thing["name"])
    assert found == {"a": {"name": "a", "value": 1}, "b": {"name": "b", "value": 2}}
    assert list(discover(package, "THING", key=lambda thing: thing["name"], skip=("alpha",))) == ["b"]


def test_a_key_defined_twice_names_both_modules(plugin_package):
    (plugin_package / "gamma.py").write_text("THING = {'name': 'a', 'value': 9}\n")
    package = importlib.import_module("fakeplugins")
    with pytest.raises(ValueError, match=r"'a' is defined twice: in fakeplugins.alpha and fakeplugins.gamma"):
        discover(package, "THING", key=lambda thing: thing["name"])


def test_a_constant_failing_its_check_is_refused(plugin_package):
    (plugin_package / "delta.py").write_text(textwrap.dedent("THING = 'not a dict'\n"))
    package = importlib.import_module("fakeplugins")
    with pytest.raises(TypeError, match=r"fakeplugins.delta.THING is not a valid thing plug-in"):
        discover(package, "THING", key=str, check=lambda obj: isinstance(obj, dict))


def test_every_registry_of_the_project_is_found_by_the_scan():
    from benchmark.datasets import DATASETS
    from benchmark.families import FAMILIES
    from benchmark.registry import all_tasks
    from models.architectures import ARCHS
    from models.formats import FORMATS, SOURCES

    assert sorted(DATASETS) == ["chexpert", "covidx", "object_cxr", "rsna", "siim"]
    assert FAMILIES == ("classification", "detection", "segmentation", "zeroshot")
    assert len(all_tasks()) == 12 and {"siim_seg", "objectcxr_det", "chexpert_zeroshot"} <= set(all_tasks())
    assert {"resnet50", "vit_base_patch16_224"} <= set(ARCHS) and ARCHS.index("resnet50") < ARCHS.index(
        "vit_base_patch16_224"
    )
    assert {"torchvision_resnet", "lightning_prefixed", "timm_vit", "torchscript", "biovil", "kad", "medklip"} <= set(
        FORMATS
    )
    assert list(SOURCES) == ["hf", "imagenet", "module", "random"]
