"""The modeling-code export (``harness/hub/export.py``): every custom family becomes a flat folder that passes
``transformers``' own remote-code import checks, by source rewriting alone; what cannot be exported is refused."""

from __future__ import annotations

import ast
import textwrap

import pytest

from harness.hub import export


@pytest.mark.parametrize("model_type", export.custom_model_types())
def test_every_family_exports_self_contained(model_type, tmp_path):
    family = export.find_family(model_type)
    assert family.auto_map["AutoConfig"].startswith("configuration_")
    assert len(family.auto_map) >= 2  # the config and at least one model class
    for name, text in family.files.items():
        (tmp_path / name).write_text(text)
        tree = ast.parse(text)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                assert not (node.module or "").startswith("harness"), (name, node.module)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id != "register_auto", name
    export.check_folder(tmp_path, family.files)  # transformers' get_imports / get_relative_imports
    for ref in family.auto_map.values():
        module, cls = ref.split(".")
        assert f"class {cls}(" in family.files[f"{module}.py"] or cls in family.files[f"{module}.py"]


def test_unknown_model_type_is_not_custom():
    assert export.find_family("bert") is None


def _toy(tmp_path, monkeypatch, modeling: str, extra: dict | None = None):
    root = tmp_path / "harness"
    files = {"__init__.py": "", "registry.py": "def register_auto(*a, **k): pass\ndef register(*a, **k): pass\n",
             "models/__init__.py": "", "models/toy/__init__.py": "",
             "models/toy/configuration_toy.py": "from transformers import PretrainedConfig\n\n\n"
                                                 "class ToyConfig(PretrainedConfig):\n    model_type = 'toy'\n",
             "models/toy/modeling_toy.py": textwrap.dedent(modeling), "modules/__init__.py": "",
             "modules/helpers.py": "def double(x):\n    return 2 * x\n", **(extra or {})}
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    monkeypatch.setattr(export, "ROOT", root)


def test_rewrite_relative_nested_docstring_and_hooks(tmp_path, monkeypatch):
    _toy(tmp_path, monkeypatch, '''\
        """Toy.

        from harness.models.toy.modeling_toy import ToyModel   (an example in a docstring)
        """
        from transformers import PreTrainedModel

        from harness.models.toy.configuration_toy import ToyConfig
        from harness.registry import register, register_auto


        @register("model", "toy")
        class ToyModel(PreTrainedModel):
            config_class = ToyConfig

            def forward(self, x):
                from harness.modules.helpers import double

                return double(x)


        register_auto(ToyConfig, AutoModel=ToyModel)
        ''')
    family = export.find_family("toy")
    assert family.auto_map == {"AutoConfig": "configuration_toy.ToyConfig", "AutoModel": "modeling_toy.ToyModel"}
    assert set(family.files) == {"configuration_toy.py", "modeling_toy.py", "helpers.py"}
    text = family.files["modeling_toy.py"]
    assert "from .configuration_toy import ToyConfig" in text
    assert "        from .helpers import double" in text  # indentation kept inside the function
    assert "@register" not in text and "register_auto(" not in text
    assert "# from harness.models.toy.modeling_toy import ToyModel" in text  # neutralised for transformers' check
    for name, body in family.files.items():
        (tmp_path / name).write_text(body)
    export.check_folder(tmp_path, family.files)
    ast.parse(text)

def test_refuses_what_cannot_be_exported(tmp_path, monkeypatch):
    _toy(tmp_path, monkeypatch, '''\
        from harness.models.toy.configuration_toy import ToyConfig
        from harness.registry import register_auto

        HOOK = register_auto


        class ToyModel:
            config_class = ToyConfig


        register_auto(ToyConfig, AutoModel=ToyModel)
        ''')
    with pytest.raises(export.ExportError, match=r"modeling_toy.py:4: uses harness.registry's register_auto"):
        export.find_family("toy")
    _toy(tmp_path, monkeypatch, '''\
        from harness.models.toy.configuration_toy import ToyConfig
        from harness.modules.configuration_toy import X
        from harness.registry import register_auto


        class ToyModel:
            config_class = ToyConfig


        register_auto(ToyConfig, AutoModel=ToyModel)
        ''', {"modules/configuration_toy.py": "X = 1\n"})
    with pytest.raises(export.ExportError, match="both are configuration_toy.py"):
        export.find_family("toy")
