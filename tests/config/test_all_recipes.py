"""Every recipe shipped under recipes/ validates (without reading data or building models)."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from harness.config import components
from harness.config.loader import load_recipe
from harness.config.schema import validate

REPO = Path(__file__).resolve().parents[2]
RECIPES = sorted((REPO / "recipes").rglob("*.yaml"))


def test_recipes_folder_has_recipes():
    assert RECIPES, f"no *.yaml under {REPO / 'recipes'}"


@pytest.fixture
def no_component_calls(monkeypatch):
    """Validation may resolve components and read their signatures, never call them (no data, no weights)."""
    real = components.resolve

    def resolve(section, name):
        fn = real(section, name)

        @functools.wraps(fn)
        def guarded(*args, **kwargs):
            raise AssertionError(f"validation called the {section} component {name!r}")

        return guarded

    monkeypatch.setattr(components, "resolve", resolve)


@pytest.mark.parametrize("path", RECIPES, ids=[str(p.relative_to(REPO / "recipes")) for p in RECIPES])
def test_recipe_validates(path, tmp_path, monkeypatch, no_component_calls):
    monkeypatch.setenv("HARNESS_DATA_DIR", str(tmp_path / "data"))  # for recipes that interpolate it
    monkeypatch.chdir(tmp_path)  # relative paths in a recipe must not depend on where tests run
    recipe = validate(load_recipe(path))
    assert recipe.output_dir
    assert recipe.data_component and recipe.model_component
    assert not (tmp_path / "data").exists()
