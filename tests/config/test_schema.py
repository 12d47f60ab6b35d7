"""Recipe validation: every problem with its full key path, before any data or weights are touched."""

from __future__ import annotations

import copy
import subprocess
import sys
import textwrap

import pytest

from testkit import TINY_RECIPE, tiny_recipe
from harness.config.loader import load_recipe
from harness.config.schema import Recipe, TrainingConfig, validate
from harness.errors import RecipeError

def recipe(**sections) -> dict:
    """The shared tiny recipe with some sections replaced (``None`` removes one)."""
    return tiny_recipe(**sections)


def errors_of(raw: dict) -> list[str]:
    with pytest.raises(RecipeError) as e:
        validate(raw)
    message = str(e.value)
    assert message.startswith("invalid recipe:\n")
    return [line.strip() for line in message.splitlines()[1:]]


def one_error(raw: dict) -> str:
    errors = errors_of(raw)
    assert len(errors) == 1, errors
    return errors[0]


# ------------------------------------------------------------------------------------ good recipes


def test_good_recipe_validates_with_defaults():
    r = validate(recipe(seed=None, training=None))
    assert isinstance(r, Recipe)
    assert r.output_dir == TINY_RECIPE["output_dir"] and r.seed == 42
    assert r.training == TrainingConfig()
    assert r.optimizer == {"component": "adamw"} and r.scheduler == {"component": "linear"}
    assert r.loss is None and r.step is None and r.callbacks == [] and r.generation is None
    assert r.data_component == "synthetic_classification" and r.data_args == {"num_train": 32, "num_validation": 8}
    assert r.model_component == "bert_from_scratch" and r.model_args["hidden_size"] == 16
    assert r.peft is None and r.model_path is None


def test_yaml11_exponent_strings_are_floats(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(textwrap.dedent("""
        output_dir: runs/x
        data: {component: synthetic_classification}
        model: {component: bert_from_scratch, dropout: 1e-1}
        training:
          lr: 5e-5
          num_epochs: 3
          max_steps: 1e3
          mixed_precision: no
        optimizer: {component: adamw, eps: 1E-8, betas: [0.9, 0.999]}
    """))
    raw = load_recipe(path)
    assert raw["training"]["lr"] == "5e-5"  # what YAML 1.1 gives
    r = validate(raw)
    assert r.training.lr == 5e-5 and isinstance(r.training.lr, float)
    assert r.optimizer == {"component": "adamw", "eps": 1e-8, "betas": (0.9, 0.999)}
    assert r.training.num_epochs == 3.0 and isinstance(r.training.num_epochs, float)
    assert r.training.max_steps == 1000 and isinstance(r.training.max_steps, int)
    assert r.training.mixed_precision == "no"  # YAML 1.1 reads `no` as false
    assert r.model_args["dropout"] == 0.1


def test_model_path_is_kept_out_of_component_args_and_raw_is_unchanged():
    raw = recipe(model={"component": "bert_from_scratch", "path": "runs/x/model"})
    before = copy.deepcopy(raw)
    r = validate(raw)
    assert r.model_path == "runs/x/model" and "path" not in r.model_args
    assert raw == before and r.raw is raw


# ------------------------------------------------------------------------------------ unknown keys


def test_unknown_top_level_key():
    raw = recipe()
    raw["trainig"] = {"lr": 1}
    assert one_error(raw) == "trainig: unknown key (did you mean 'training'?)"


def test_unknown_section_key_suggests_closest():
    assert one_error(recipe(training={"lrr": 1e-3})) == "training.lrr: unknown key (did you mean 'lr'?)"


def test_unknown_key_without_close_match():
    assert one_error(recipe(training={"zzzzzz": 1})) == "training.zzzzzz: unknown key"


def test_unknown_component_argument_suggests_closest():
    model = {"component": "bert_from_scratch", "hiden_size": 16}
    assert one_error(recipe(model=model)) == "model.hiden_size: unknown key (did you mean 'hidden_size'?)"


def test_runner_filled_argument_is_not_a_recipe_key():
    assert one_error(recipe(model={"component": "bert_from_scratch", "task": "x"})) == (
        "model.task: set by the runner, not the recipe")
    assert one_error(recipe(optimizer={"component": "adamw", "lr": 1})) == "optimizer.lr: set by the runner, not the recipe"


@pytest.mark.parametrize("key, where", [
    ("learning_rate", "training.lr"), ("num_train_epochs", "training.num_epochs"),
    ("per_device_train_batch_size", "training.batch_size"), ("logging_steps", "training.log_steps"),
    ("lr_scheduler_type", "scheduler.component"),
])
def test_hugging_face_trainer_names_point_at_ours(key, where):
    assert one_error(recipe(training={key: 1})) == (
        f"training.{key}: unknown key (the Hugging Face TrainingArguments name; here it is {where})")


def test_keys_that_moved_out_of_training_say_where():
    error = one_error(recipe(training={"optimizer": "sgd"}))
    assert error.startswith("training.optimizer: unknown key (moved to the optimizer section")


# ------------------------------------------------------------------------------------ types


@pytest.mark.parametrize(
    "training, message",
    [
        ({"lr": "fast"}, "training.lr: expected a number, got 'fast' (str)"),
        ({"lr": True}, "training.lr: expected a number, got True"),
        ({"batch_size": 8.5}, "training.batch_size: expected an integer, got 8.5 (float)"),
        ({"batch_size": "8"}, "training.batch_size: expected an integer, got '8' (str)"),
        ({"batch_size": True}, "training.batch_size: expected an integer, got True (bool)"),
        ({"overwrite": "yes please"}, "training.overwrite: expected true/false, got 'yes please' (str)"),
        ({"eval_batch_size": "big"}, "training.eval_batch_size: expected int | None, got 'big' (str)"),
    ],
)
def test_wrong_type_names_path_expected_and_got(training, message):
    assert one_error(recipe(training=training)) == message


@pytest.mark.parametrize(
    "optimizer, message",
    [
        ({"component": "adamw", "betas": 0.9}, "optimizer.betas: expected a list, got 0.9 (float)"),
        ({"component": "adamw", "betas": [0.9]}, "optimizer.betas: expected 2 items, got 1"),
        ({"component": "adamw", "betas": [0.9, "x"]}, "optimizer.betas[1]: expected a number, got 'x' (str)"),
        ({"component": "sgd", "betas": [0.9, 0.9]}, "optimizer.betas: unknown key"),
    ],
)
def test_optimizer_arguments_are_checked_against_the_component(optimizer, message):
    assert one_error(recipe(optimizer=optimizer)) == message


def test_wrong_type_in_component_argument():
    model = {"component": "bert_from_scratch", "hidden_size": "wide"}
    assert one_error(recipe(model=model)) == "model.hidden_size: expected an integer, got 'wide' (str)"


def test_wrong_type_of_list_items():
    assert one_error(recipe(evaluation={"splits": ["validation", 3]})) == (
        "evaluation.splits[1]: expected a string, got 3 (int)"
    )


def test_section_that_is_not_a_mapping_is_reported_once():
    assert one_error(recipe(training=5)) == "training: expected a mapping, got 5 (int)"
    assert one_error(recipe(data="glue")) == "data: expected a mapping, got 'glue' (str)"


def test_nullable_fields_accept_null():
    r = validate(recipe(training={"max_grad_norm": None, "max_steps": None}))
    assert r.training.max_grad_norm is None


# ------------------------------------------------------------------------------------ missing keys


def test_missing_output_dir():
    assert one_error(recipe(output_dir=None)) == "output_dir: missing required key"


def test_missing_data_section():
    assert one_error(recipe(data=None)) == "data: missing required key"


def test_missing_component_name_lists_choices():
    error = one_error(recipe(data={"num_train": 8}))
    assert error.startswith("data.component: missing required key (one of: ")
    assert "synthetic_classification" in error


def test_missing_required_component_argument():
    data = {"component": "text_classification", "train_file": "t.tsv"}
    assert one_error(recipe(data=data)) == "data.validation_file: missing required key"


# ------------------------------------------------------------------------------------ Literal choices


def test_literal_choice_with_suggestion():
    assert one_error(recipe(training={"mixed_precision": "bf61"})) == (
        "training.mixed_precision: expected one of ['no', 'fp16', 'bf16', 'auto'], got 'bf61' (did you mean 'bf16'?)"
    )


def test_literal_choices_accepted():
    r = validate(recipe(training={"mixed_precision": "bf16"}, scheduler={"component": "cosine"},
                        optimizer={"component": "sgd", "momentum": 0.9}))
    assert r.training.mixed_precision == "bf16"
    assert r.scheduler == {"component": "cosine"} and r.optimizer == {"component": "sgd", "momentum": 0.9}


def test_literal_bool_not_in_choices():
    assert one_error(recipe(training={"mixed_precision": True})).startswith("training.mixed_precision: expected one of")


# ------------------------------------------------------------------------------------ components: the registry only


@pytest.mark.parametrize(
    "name",
    [
        "os.system",
        "subprocess:run",
        "antigravity.fly",
        "this:x",
        "harness:main",
        "harness.__main__:main",  # would run the CLI on import
        "harness.data.synthetic:synthetic_classification",  # a real component, but not by a dotted path
        "harness.workflows.glue_leaderboard.main",  # launches processes: never a component
    ],
)
def test_only_registered_names_are_components_and_nothing_is_imported(name):
    validate(recipe())  # the registered components are imported now, so anything new below is the refused one
    # harmless stdlib modules that nothing imports (`this` prints the Zen of Python, `antigravity` opens a browser)
    assert "antigravity" not in sys.modules and "this" not in sys.modules
    before = set(sys.modules)
    error = one_error(recipe(data={"component": name}))
    assert error.startswith(f"data.component: unknown data component {name!r}")
    assert "registered: " in error and "synthetic_classification" in error
    assert set(sys.modules) - before == set()
    assert "antigravity" not in sys.modules and "this" not in sys.modules


def test_refused_component_is_not_imported_in_a_fresh_process():
    # the strongest form: a fresh interpreter, where nothing was imported before
    code = textwrap.dedent("""
        import sys
        from harness.config.schema import validate
        from harness.errors import RecipeError
        for name in ("antigravity:fly", "os.system", "subprocess:run", "this.x", "harness.workflows.glue_leaderboard:main"):
            try:
                validate({"output_dir": "x", "data": {"component": name}, "model": {"component": "bert_from_scratch"}})
            except RecipeError as e:
                assert "unknown data component" in str(e), e
            else:
                raise SystemExit("accepted " + name)
        print(sorted(m for m in ("antigravity", "this", "webbrowser", "harness.workflows.glue_leaderboard")
                     if m in sys.modules))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_unknown_component_suggests_closest_registered_name():
    error = one_error(recipe(model={"component": "bert_from_scrach"}))
    assert error.startswith(
        "model.component: unknown model component 'bert_from_scrach' (did you mean 'bert_from_scratch'?)")
    assert "registered: bert_from_scratch, " in error and "pretrained_classifier" in error


def test_component_name_must_be_a_string():
    assert one_error(recipe(data={"component": 3})) == "data.component: expected a component name, got 3 (int)"


def test_component_of_another_section_is_unknown_and_says_where_it_is():
    assert one_error(recipe(data={"component": "bert_from_scratch"})).startswith(
        "data.component: unknown data component 'bert_from_scratch'; 'bert_from_scratch' is a model component"
    )


def test_a_registered_component_from_a_plugin_validates_and_is_checked():
    from harness import registry

    @registry.register("callback", "test_counter")
    class Counter:
        def __init__(self, every: int = 1):
            if every < 1:
                raise ValueError(f"every: expected ≥ 1, got {every}")

    try:
        r = validate(recipe(callbacks=[{"component": "test_counter", "every": 2}]))
        assert r.callbacks == [{"component": "test_counter", "every": 2}]
        assert one_error(recipe(callbacks=[{"component": "test_counter", "every": "x"}])) == (
            "callbacks[0].every: expected an integer, got 'x' (str)")
        assert one_error(recipe(callbacks=[{"component": "test_counter", "every": 0}])) == (
            "callbacks[0].every: expected ≥ 1, got 0")
    finally:
        registry.unregister("callback", "test_counter")


def test_loss_step_and_generation_sections():
    r = validate(recipe(loss={"component": "cross_entropy", "label_smoothing": 0.1}, step={"component": "standard"},
                        generation={"max_new_tokens": 8, "num_beams": 2}))
    assert r.loss == {"component": "cross_entropy", "label_smoothing": 0.1} and r.step == {"component": "standard"}
    assert r.generation == {"max_new_tokens": 8, "num_beams": 2, "logits_processors": []}
    assert one_error(recipe(loss={"component": "cross_entropy", "label_smoothing": 1.5})) == (
        "loss.label_smoothing: expected a number in [0, 1), got 1.5")
    assert one_error(recipe(generation={"num_beam": 2})).startswith(
        "generation.num_beam: unknown key for transformers.GenerationConfig (did you mean 'num_beams'?)")
    assert one_error(recipe(generation={"num_beams": 0})) == "generation.num_beams: expected a number >= 1, got 0"
    assert one_error(recipe(generation={"temperature": 0.5})).startswith(
        "generation.temperature: `do_sample` is not set to `True`")
    assert one_error(recipe(generation={"num_beams": 1, "length_penalty": 2.0})).startswith(
        "generation.length_penalty: `num_beams` is set to 1")
    both = errors_of(recipe(generation={"num_beams": 1, "length_penalty": 2.0, "top_k": 5}))
    assert sorted(e.split(":")[0] for e in both) == ["generation.length_penalty", "generation.top_k"]
    assert "num_return_sequences" in one_error(recipe(generation={"num_beams": 2, "num_return_sequences": 3}))
    assert one_error(recipe(generation={"logits_processors": [{"component": "nope"}]})).startswith(
        "generation.logits_processors[0].component: unknown logits_processor component 'nope'")


def test_contradictory_generation_flags_are_one_error_each_and_no_transformers_log(capfd):
    """transformers also logs "generation flags are not valid" for these; the recipe error says it once, and
    transformers' log level is left as it was."""
    from transformers.utils import logging as hf_logging

    before = hf_logging.get_verbosity()
    capfd.readouterr()
    assert one_error(recipe(generation={"do_sample": False, "top_p": 0.9})).startswith("generation.top_p: ")
    out, err = capfd.readouterr()
    assert "not valid" not in out + err
    assert hf_logging.get_verbosity() == before


def test_metric_for_best_must_be_one_the_task_reports():
    assert one_error(recipe(evaluation={"metric_for_best": "f2"})) == (
        "evaluation.metric_for_best: 'f2' is not a metric this task reports "
        "(it reports: accuracy, f1_macro, matthews_correlation, f1, loss) (did you mean 'f1'?)")
    validate(recipe(evaluation={"metric_for_best": "validation/loss"}))
    glue = {"component": "glue", "task": "stsb"}
    assert one_error(recipe(data=glue, evaluation={"metric_for_best": "accuracy"})).startswith(
        "evaluation.metric_for_best: 'accuracy' is not a metric this task reports (it reports: pearson, spearmanr")
    ner = {"component": "conll_ner", "train_file": "t.txt"}
    validate(recipe(data=ner, evaluation={"metric_for_best": "validation/PER/f1"}))
    assert one_error(recipe(evaluation={"metric_for_best": "test/accuracy", "splits": ["validation"]})) == (
        "evaluation.metric_for_best: split 'test' is not evaluated (evaluation.splits: ['validation'])")


def test_a_tracker_that_is_not_installed_is_an_error():
    assert one_error(recipe(tracking={"report_to": ["tensorbord"]})).startswith(
        "tracking.report_to[0]: unknown tracker 'tensorbord' (did you mean 'tensorboard'?)")
    import importlib.util

    if importlib.util.find_spec("wandb") is None:
        assert one_error(recipe(tracking={"report_to": ["wandb"]})) == (
            "tracking.report_to[0]: 'wandb' is not installed (pip install wandb), or leave it out of tracking.report_to")


# ------------------------------------------------------------------------------------ peft


def test_peft_lora_validates_and_coerces():
    r = validate(recipe(peft={"method": "lora", "r": 4, "lora_alpha": 8, "lora_dropout": "5e-2",
                              "target_modules": ["query", "value"], "bias": "none"}))
    assert r.peft == {"method": "lora", "r": 4, "lora_alpha": 8, "lora_dropout": 0.05,
                      "target_modules": ["query", "value"], "bias": "none"}


def test_peft_unknown_method():
    assert one_error(recipe(peft={"method": "loar", "r": 4})) == (
        "peft.method: expected one of ['adapter_fusion', 'dora', 'houlsby', 'ia3', 'loha', 'lokr', 'lora', 'pfeiffer'], "
        "got 'loar' (did you mean 'lora'?)"
    )


def test_peft_missing_method():
    assert one_error(recipe(peft={"r": 4})).startswith("peft.method: missing required key")


def test_peft_unknown_lora_key():
    assert one_error(recipe(peft={"method": "lora", "r": 4, "lora_alph": 8})) == (
        "peft.lora_alph: unknown key for LoraConfig (did you mean 'lora_alpha'?)"
    )


def test_peft_task_type_is_set_by_the_runner():
    assert one_error(recipe(peft={"method": "lora", "task_type": "SEQ_CLS"})).startswith("peft.task_type: unknown key")


def test_peft_wrong_types():
    errors = errors_of(recipe(peft={"method": "lora", "r": "four", "bias": "some"}))
    assert "peft.r: expected an integer, got 'four' (str)" in errors
    assert any(e.startswith("peft.bias: expected one of ['none', 'all', 'lora_only'], got 'some'") for e in errors)


def test_peft_documented_pattern_choice():
    r = validate(recipe(peft={"method": "lora", "init_lora_weights": "pissa_niter_16"}))
    assert r.peft["init_lora_weights"] == "pissa_niter_16"


# ------------------------------------------------------------------------------------ all together


def test_all_errors_reported_together():
    raw = {
        "outputdir": "runs/x",
        "data": {"component": "synthetic_classification", "num_trian": 8, "seed": "zero"},
        "model": {"component": "bert_from_scratch", "hidden_size": "wide"},
        "training": {"lrr": 1, "mixed_precision": "bf61", "batch_size": 1.5},
        "evaluation": {"splits": "validation"},
        "tracking": {"report_to": "tensorboard", "project": "p"},
        "peft": {"method": "lora", "alpha": 8},
        "seed": "x",
    }
    errors = errors_of(raw)
    expected_paths = [
        "outputdir", "output_dir", "data.num_trian", "data.seed", "model.hidden_size", "training.lrr",
        "training.mixed_precision", "training.batch_size", "evaluation.splits", "tracking.report_to",
        "tracking.project", "peft.alpha", "seed",
    ]
    paths = [e.split(":", 1)[0] for e in errors]
    assert sorted(paths) == sorted(expected_paths), errors
    assert "outputdir: unknown key (did you mean 'output_dir'?)" in errors
    assert "data.num_trian: unknown key (did you mean 'num_train'?)" in errors
    assert "tracking.project: unknown key (did you mean 'project_name'?)" in errors


def test_recipe_that_is_not_a_mapping():
    with pytest.raises(RecipeError, match="recipe: expected a mapping"):
        validate(["a"])  # type: ignore[arg-type]
