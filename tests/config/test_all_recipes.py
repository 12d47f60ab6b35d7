"""Every recipe shipped under recipes/ validates (without reading data or building models)."""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import pytest

from harness import registry
from harness.config.loader import load_recipe
from harness.config.schema import validate

REPO = Path(__file__).resolve().parents[2]
RECIPES = sorted((REPO / "recipes").rglob("*.yaml"))


def test_recipes_folder_has_recipes():
    assert RECIPES, f"no *.yaml under {REPO / 'recipes'}"


@pytest.fixture
def no_component_calls(monkeypatch):
    """Validation may resolve data and model components and read their signatures, never call them (no
    data, no weights)."""
    for section in ("data", "model"):
        for entry in list(registry.entries(section)):

            def guarded(*args, _name=entry.name, _section=section, **kwargs):
                raise AssertionError(f"validation called the {_section} component {_name!r}")

            functools.update_wrapper(guarded, entry.target)
            monkeypatch.setitem(registry._ENTRIES[section], entry.name, dataclasses.replace(entry, target=guarded))


@pytest.mark.parametrize("path", RECIPES, ids=[str(p.relative_to(REPO / "recipes")) for p in RECIPES])
def test_recipe_validates(path, tmp_path, monkeypatch, no_component_calls):
    monkeypatch.setenv("HARNESS_DATA_DIR", str(tmp_path / "data"))  # for recipes that interpolate it
    monkeypatch.chdir(tmp_path)  # relative paths in a recipe must not depend on where tests run
    recipe = validate(load_recipe(path))
    assert recipe.output_dir
    assert recipe.data_component and recipe.model_component
    assert not (tmp_path / "data").exists()
