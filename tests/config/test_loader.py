"""Recipe loading: YAML → extends → dotted overrides → ${...} interpolation (no schema here)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from testkit import TINY_RECIPE, tiny_yaml

from harness.config.loader import apply_overrides, deep_merge, interpolate, load_recipe, parse_override, read_yaml
from harness.errors import RecipeError

BASE = tiny_yaml(output_dir="runs/base")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------ extends


def test_extends_single_base(tmp_path):
    write(tmp_path / "base.yaml", BASE)
    child = write(tmp_path / "child.yaml", "extends: base.yaml\noutput_dir: runs/child\ntraining:\n  batch_size: 4\n")
    r = load_recipe(child)
    assert "extends" not in r
    assert r["output_dir"] == "runs/child"
    assert r["training"] == {"lr": TINY_RECIPE["training"]["lr"], "batch_size": 4}  # merged key by key
    assert r["data"]["num_train"] == TINY_RECIPE["data"]["num_train"] and r["seed"] == 1


def test_extends_list_later_base_wins(tmp_path):
    write(tmp_path / "a.yaml", "seed: 1\ntraining: {lr: 0.1, batch_size: 8}\n")
    write(tmp_path / "b.yaml", "seed: 2\ntraining: {lr: 0.2}\n")
    child = write(tmp_path / "c.yaml", "extends: [a.yaml, b.yaml]\ntraining: {num_epochs: 1}\n")
    r = load_recipe(child)
    assert r["seed"] == 2
    assert r["training"] == {"lr": 0.2, "batch_size": 8, "num_epochs": 1}


def test_extends_chain_each_path_relative_to_its_own_file(tmp_path):
    write(tmp_path / "root" / "base.yaml", BASE)
    write(tmp_path / "root" / "mid" / "mid.yaml", "extends: ../base.yaml\nseed: 7\n")
    leaf = write(tmp_path / "other" / "leaf.yaml", "extends: ../root/mid/mid.yaml\nname: leaf\n")
    r = load_recipe(leaf)
    assert (r["seed"], r["name"], r["output_dir"]) == (7, "leaf", "runs/base")


def test_extends_relative_to_recipe_not_cwd(tmp_path, monkeypatch):
    write(tmp_path / "recipes" / "base.yaml", BASE)
    child = write(tmp_path / "recipes" / "child.yaml", "extends: base.yaml\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert load_recipe(child)["output_dir"] == "runs/base"


def test_extends_missing_base_names_it(tmp_path):
    child = write(tmp_path / "child.yaml", "extends: nowhere.yaml\n")
    with pytest.raises(RecipeError, match=r"child\.yaml: extends: base recipe not found: .*nowhere\.yaml"):
        load_recipe(child)


def test_extends_cycle_detected(tmp_path):
    write(tmp_path / "a.yaml", "extends: b.yaml\n")
    write(tmp_path / "b.yaml", "extends: c.yaml\n")
    write(tmp_path / "c.yaml", "extends: a.yaml\n")
    with pytest.raises(RecipeError, match="cycle") as e:
        load_recipe(tmp_path / "a.yaml")
    assert "a.yaml -> " in str(e.value) and "c.yaml" in str(e.value)


def test_extends_self_is_a_cycle(tmp_path):
    write(tmp_path / "a.yaml", "extends: a.yaml\n")
    with pytest.raises(RecipeError, match="cycle"):
        load_recipe(tmp_path / "a.yaml")


def test_extends_diamond_is_not_a_cycle(tmp_path):
    write(tmp_path / "d.yaml", "seed: 1\n")
    write(tmp_path / "b.yaml", "extends: d.yaml\nname: b\n")
    write(tmp_path / "c.yaml", "extends: d.yaml\ndescription: c\n")
    r = load_recipe(write(tmp_path / "a.yaml", "extends: [b.yaml, c.yaml]\n"))
    assert r == {"seed": 1, "name": "b", "description": "c"}


def test_extends_must_be_path_or_list(tmp_path):
    with pytest.raises(RecipeError, match="'extends' must be a path or a list"):
        load_recipe(write(tmp_path / "a.yaml", "extends: {x: 1}\n"))


# ------------------------------------------------------------------------------------ deep merge


def test_deep_merge_same_component_merges_arguments():
    base = {"data": {"component": "glue", "task": "sst2", "source": "local"}}
    assert deep_merge(base, {"data": {"component": "glue", "task": "mrpc"}}) == {
        "data": {"component": "glue", "task": "mrpc", "source": "local"}
    }


def test_deep_merge_component_change_replaces_section(tmp_path):
    write(tmp_path / "base.yaml", BASE)
    child = write(
        tmp_path / "child.yaml",
        "extends: base.yaml\ndata:\n  component: text_classification\n  train_file: t.tsv\n  validation_file: v.tsv\n",
    )
    assert load_recipe(child)["data"] == {
        "component": "text_classification", "train_file": "t.tsv", "validation_file": "v.tsv"
    }


def test_deep_merge_does_not_mutate_inputs():
    base = {"a": {"b": [1]}}
    over = {"a": {"c": 2}}
    out = deep_merge(base, over)
    out["a"]["b"].append(2)
    assert base == {"a": {"b": [1]}} and over == {"a": {"c": 2}}


# ------------------------------------------------------------------------------------ overrides


@pytest.mark.parametrize(
    "text, value",
    [
        ("training.batch_size=16", 16),
        ("training.lr=3e-4", 3e-4),
        ("training.lr=3E-4", 3e-4),
        ("training.lr=1e3", 1000.0),
        ("training.lr=0.001", 0.001),
        ("training.lr=-2.5e-3", -2.5e-3),
        ("training.overwrite=true", True),
        ("training.overwrite=false", False),
        ("evaluation.splits=[a,b]", ["a", "b"]),
        ("evaluation.splits=[]", []),
        ("training.max_steps=null", None),
        ("training.max_steps=~", None),
        ("data.task=mrpc", "mrpc"),
        ("output_dir=runs/x=y", "runs/x=y"),  # only the first '=' splits
        ("name=", ""),
        ("name=[unclosed", "[unclosed"),  # not valid YAML: kept as text
    ],
)
def test_override_value_types(text, value):
    parts, parsed = parse_override(text)
    assert parts == text.split("=", 1)[0].split(".")
    assert parsed == value and type(parsed) is type(value)


def test_override_sets_existing_and_new_nested_keys(tmp_path):
    recipe = write(tmp_path / "r.yaml", BASE)
    r = load_recipe(recipe, ["training.lr=3e-4", "data.task=mrpc", "tracking.report_to=[]", "a.b.c=1"])
    assert r["training"] == {"lr": 3e-4, "batch_size": 8}
    assert r["data"]["task"] == "mrpc" and r["data"]["num_train"] == TINY_RECIPE["data"]["num_train"]
    assert r["tracking"] == {"report_to": []}
    assert r["a"] == {"b": {"c": 1}}


def test_override_later_wins():
    assert apply_overrides({}, ["seed=1", "seed=2"]) == {"seed": 2}


def test_override_component_change_replaces_section_like_extends():
    data = {"data": {"component": "synthetic_classification", "num_train": 8}}
    out = apply_overrides(data, ["data.train_file=t.tsv", "data.component=text_classification"])
    assert out["data"] == {"component": "text_classification", "train_file": "t.tsv"}
    assert data["data"]["num_train"] == 8  # input untouched


def test_override_into_a_value_is_an_error():
    with pytest.raises(RecipeError, match="training.lr is a value, not a section"):
        apply_overrides({"training": {"lr": 0.1}}, ["training.lr.x=1"])
    with pytest.raises(RecipeError, match="seed is a value, not a section"):
        apply_overrides({}, ["seed=1", "seed.x=2"])


@pytest.mark.parametrize("text", ["training.lr", "training..lr=1", ".lr=1", "=1"])
def test_malformed_override(text):
    with pytest.raises(RecipeError, match="override"):
        parse_override(text)


# ------------------------------------------------------------------------------------ interpolation


def test_interpolation_whole_value_keeps_type():
    r = interpolate({"training": {"lr": 0.01, "batch_size": 8, "betas": [0.9, 0.99]},
                     "x": {"lr": "${training.lr}", "bs": "${training.batch_size}", "b": "${training.betas}",
                           "sec": "${training}"}})
    assert r["x"]["lr"] == 0.01 and isinstance(r["x"]["lr"], float)
    assert r["x"]["bs"] == 8 and isinstance(r["x"]["bs"], int)
    assert r["x"]["b"] == [0.9, 0.99]
    assert r["x"]["sec"] == {"lr": 0.01, "batch_size": 8, "betas": [0.9, 0.99]}


def test_interpolation_into_strings():
    r = interpolate({"name": "bert", "seed": 3, "output_dir": "runs/${name}-s${seed}/${ name }"})
    assert r["output_dir"] == "runs/bert-s3/bert"


def test_interpolation_chains_and_sees_overrides(tmp_path):
    recipe = write(tmp_path / "r.yaml", "name: a\ndescription: ${name}\noutput_dir: runs/${description}\n")
    assert load_recipe(recipe, ["name=b"])["output_dir"] == "runs/b"


def test_interpolation_in_lists():
    assert interpolate({"a": 1, "l": ["${a}", "x${a}"]})["l"] == [1, "x1"]


def test_env_interpolation(monkeypatch):
    monkeypatch.setenv("HARNESS_TEST_DIR", "/data/here")
    monkeypatch.setenv("HARNESS_TEST_BS", "16")
    monkeypatch.delenv("HARNESS_TEST_UNSET", raising=False)
    r = interpolate({
        "a": "${env:HARNESS_TEST_DIR}",
        "b": "${env:HARNESS_TEST_DIR}/glue",
        "c": "${env:HARNESS_TEST_UNSET,/tmp/default}/glue",
        "d": "${env:HARNESS_TEST_UNSET,32}",
        "e": "${env:HARNESS_TEST_BS,32}",  # set: its value, read like an override
        "f": "${env:HARNESS_TEST_UNSET,}",
        "g": "${env:HARNESS_TEST_DIR,unused}",
    })
    assert r == {"a": "/data/here", "b": "/data/here/glue", "c": "/tmp/default/glue", "d": 32, "e": 16,
                 "f": "", "g": "/data/here"}


def test_env_without_default_must_be_set(monkeypatch):
    monkeypatch.delenv("HARNESS_TEST_UNSET", raising=False)
    with pytest.raises(RecipeError, match=r"data\.data_dir: .*HARNESS_TEST_UNSET.* is not set"):
        interpolate({"data": {"data_dir": "${env:HARNESS_TEST_UNSET}/glue"}})


def test_env_value_is_not_interpolated_again(monkeypatch):
    monkeypatch.setenv("HARNESS_TEST_DIR", "${nope}")
    assert interpolate({"a": "${env:HARNESS_TEST_DIR}"}) == {"a": "${nope}"}


def test_missing_reference_names_the_key_path():
    with pytest.raises(RecipeError, match=r"^model\.hidden_size: \$\{training\.width\} refers to a key that does not exist"):
        interpolate({"training": {"lr": 1}, "model": {"hidden_size": "${training.width}"}})


def test_missing_reference_in_list_names_the_index():
    with pytest.raises(RecipeError, match=r"^evaluation\.splits\[1\]: \$\{nope\}"):
        interpolate({"evaluation": {"splits": ["a", "${nope}"]}})


def test_reference_cycle_is_an_error():
    with pytest.raises(RecipeError, match="does not terminate"):
        interpolate({"a": "${b}", "b": "${a}"})


# ------------------------------------------------------------------------------------ YAML files


def test_invalid_yaml_names_file_and_line(tmp_path):
    bad = write(tmp_path / "bad.yaml", "output_dir: x\ntraining:\n  lr: [1, 2\n  batch_size: 3\nseed: 1\n")
    with pytest.raises(RecipeError, match=r"bad\.yaml:\d+: not valid YAML") as e:
        load_recipe(bad)
    line = int(str(e.value).split("bad.yaml:")[1].split(":")[0])
    assert 3 <= line <= 5


def test_invalid_yaml_tab_indent_line(tmp_path):
    bad = write(tmp_path / "bad.yaml", "a: 1\nb:\n\tc: 2\n")
    with pytest.raises(RecipeError, match=r"bad\.yaml:3: not valid YAML"):
        read_yaml(bad)


def test_invalid_yaml_in_base_names_the_base(tmp_path):
    write(tmp_path / "base.yaml", "a: [\n")
    with pytest.raises(RecipeError, match=r"base\.yaml:\d+: not valid YAML"):
        load_recipe(write(tmp_path / "child.yaml", "extends: base.yaml\n"))


def test_safe_load_refuses_python_tags(tmp_path):
    bad = write(tmp_path / "bad.yaml", "x: !!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(RecipeError, match=r"bad\.yaml:1: not valid YAML"):
        read_yaml(bad)


def test_recipe_must_be_a_mapping(tmp_path):
    with pytest.raises(RecipeError, match="must be a mapping"):
        read_yaml(write(tmp_path / "list.yaml", "- a\n- b\n"))


def test_empty_recipe_is_an_empty_mapping(tmp_path):
    assert read_yaml(write(tmp_path / "empty.yaml", "# nothing\n")) == {}


def test_missing_recipe_file(tmp_path):
    with pytest.raises(RecipeError, match="recipe not found"):
        load_recipe(tmp_path / "nope.yaml")


def test_non_utf8_recipe(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(RecipeError, match="not UTF-8"):
        read_yaml(path)
