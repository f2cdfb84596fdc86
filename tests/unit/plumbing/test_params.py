"""params.yaml is read and validated once: unknown keys and wrong types are refused by name, a
setting that would change nothing is refused, and every `-S` the docs show is a real setting.

The tests start from this checkout's params.yaml (tests/helpers/project_params.py) and set the
values they rely on (the model in use, a family's epochs), so a user's own settings do not decide
whether they pass."""
import inspect
import itertools
import re
import subprocess
import sys

import pytest
import yaml

from agegender import commands
from agegender.model.families import FAMILIES, Family, check_params
from agegender.params import Params, ParamsError, Recipe, load_params, parse_params
from locations import ROOT
from project_params import raw_params

# the model the docs' commands are written for: the default one (Params' default, compact)
DEFAULT_MODEL = Params.model_fields["model"].default


def test_the_projects_params_file_is_valid_and_typed():
    load_params(ROOT / "params.yaml")  # as it stands, whatever a user set in it
    raw = raw_params({"model": "compact", "models.vgg16.fine_tune.unfreeze": ["block4_", "block5_"]})
    raw["models"]["vgg19"].pop("optimizer", None)
    params = parse_params(raw)
    assert params.model == "compact" and params.recipe.epochs == params.models["compact"].epochs
    assert isinstance(params.recipe.augment.translation, float)
    # a family's block is laid over the defaults: vgg19 names no optimizer, so it gets the default
    assert params.models["vgg19"].optimizer == Recipe().optimizer == "adam"
    assert params.models["vgg16"].fine_tune.unfreeze == ["block4_", "block5_"]


@pytest.mark.parametrize("edit, key, problem", [
    (lambda p: p["models"]["compact"].update(epochss=3), "models.compact.epochss", "unknown key"),
    (lambda p: p["models"]["compact"].update(epochs="3"), "models.compact.epochs", "valid integer"),
    (lambda p: p["models"]["compact"].update(final_fit=1), "models.compact.final_fit", "valid boolean"),
    (lambda p: p["models"]["compact"].update(optimizer="adamm"), "models.compact.optimizer", "'adam'"),
    (lambda p: p["models"]["vgg16"]["augment"].update(zooom=0.1), "models.vgg16.augment.zooom",
     "unknown key"),
    (lambda p: p["evaluate"].update(tta_flip="yes"), "evaluate.tta_flip", "valid boolean"),
    (lambda p: p["models"]["compact"]["augment"].update(framing={"min_scale": 1.2, "max_scale": 0.7}),
     "models.compact.augment.framing", "min_scale 1.2 > max_scale 0.7"),
    (lambda p: p["models"]["compact"]["augment"].update(framing={"probability": 1.5}),
     "models.compact.augment.framing.probability", "less than or equal to 1"),
    (lambda p: p["split"].update(val_fraction=0.6, test_fraction=0.5), "split",
     "val_fraction + test_fraction must be below 1"),
    (lambda p: p["models"].update(resnet={}), "models.resnet", "unknown model family"),
    (lambda p: p.update(model="resnet"), "model", "unknown model family 'resnet'"),
    (lambda p: p["models"]["compact"].update(lr_schedule="plateau", final_fit=True), "models.compact",
     "final_fit needs lr_schedule: cosine"),
    (lambda p: p["models"]["compact"].update(final_fit=False, calibration_holdout=0.1), "models.compact",
     "calibration_holdout is for a final fit"),
    (lambda p: p["data"].update(coverage_min_faces=0), "data.coverage_min_faces", "greater than or equal to 1"),
    # progressive resizing: smaller than the profile, and the last epoch at its size (a case sets
    # the family's epochs it is about: a user's may be fewer)
    (lambda p: p["models"]["compact"].update(epochs=26, progressive=[{"size": 48, "epochs": 26}]),
     "models.compact", "progressive resizing takes 26 of the 26 epochs: leave at least the last epoch"),
    (lambda p: p["models"]["compact"].update(epochs=26, progressive=[{"size": 48, "epochs": 9},
                                                                     {"size": 72, "epochs": 9}]),
     "models.compact.progressive", "sizes [48, 72] must each be smaller than the 72 px faces of profile rgb72"),
    (lambda p: p["models"]["compact"].update(progressive=[{"size": 4, "epochs": 9}]),
     "models.compact.progressive.0.size", "greater than or equal to 32"),
    (lambda p: p["models"]["sigmoid_bins"].update(epochs=15, progressive=[{"size": 48, "epochs": 5}]),
     "models.sigmoid_bins.progressive", "twin_cnn flattens its last feature map"),
    # architecture: typed per family (agegender/model/families.py), checked when params load
    (lambda p: p["models"]["compact"]["architecture"].update(wieghts=None),
     "models.compact.architecture.wieghts", "unknown key (a typo, or a setting this section does "
     "not have); compact_resnet takes dropout, stage_blocks, stage_filters, stem_filters"),
    (lambda p: p["models"]["compact"]["architecture"].update(stage_blocks=[1, "2", 1, 1]),
     "models.compact.architecture.stage_blocks.1", "valid integer, got '2'"),
    (lambda p: p["models"]["compact"]["architecture"].update(stage_blocks=[1, 1]),
     "models.compact.architecture", "one entry per stage"),
    (lambda p: p["models"]["vgg16"]["architecture"].update(dropout=1.5),
     "models.vgg16.architecture.dropout", "less than 1"),
    (lambda p: p["models"]["multitask"].update(architecture={"stem_stride": 2}),  # plain_cnn's
     "models.multitask.architecture.stem_stride", "multitask_cnn takes"),
])
def test_a_bad_setting_is_refused_naming_the_key(edit, key, problem):
    raw = raw_params()
    edit(raw)
    with pytest.raises(ParamsError) as err:
        check_params(parse_params(raw))
    message = str(err.value)
    assert message.startswith(f"params.yaml: {key}: ") and problem in message, message


def test_a_training_setting_under_train_is_refused_with_the_key_to_use():
    """`-S train.epochs=2` used to be silently overridden by models.compact.epochs."""
    raw = raw_params({"model": "compact"})  # the message names the model in use
    raw["train"]["epochs"] = 2
    with pytest.raises(ParamsError, match=r"^params.yaml: train\.epochs: .*would change nothing.*"
                                          r"models\.compact\.epochs"):
        parse_params(raw)


def test_a_bad_params_file_ends_a_stage_with_one_line_and_no_traceback(tmp_path, capsys):
    from stages import ingest

    raw = raw_params({"model": "compact"})  # the message names the model in use
    raw["train"]["epochs"] = 2
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert commands.run("ingest", ingest.main, ["--params", str(path), "--labels-out", "l.csv",
                                           "--report-out", "q.json"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("ingest: error: ") and "models.compact.epochs" in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err


def test_a_bug_keeps_its_traceback():
    def buggy(argv):
        raise KeyError("a real bug")

    with pytest.raises(KeyError):
        commands.run("x", buggy)


# not docs/log.md: it records commands as they ran, on the params of their day
DOCS = [ROOT / "README.md", *sorted(p for p in (ROOT / "docs").glob("*.md") if p.name != "log.md")]


def documented_overrides() -> list[tuple[str, list[tuple[str, str]]]]:
    """Every `dvc exp run ... -S key=value ...` command in the README and docs."""
    found = []
    for doc in DOCS:
        text = doc.read_text()
        # a command on a line of its own, or an inline `...` one that prose wraps over lines
        wrapped = [m.group(1).replace("\n", " ")
                   for m in re.finditer(r"(?<!`)`([^`\n]*\n[^`]*)`(?!`)", text)]
        for line in text.splitlines() + wrapped:
            if "dvc exp run" in line and "-S" in line:
                sets = re.findall(r"-S\s+'?(\+?[\w.]+)=([^\s'`]+)", line)
                sets = [(k, v) for k, v in sets if not v.isupper()]  # -S model=NAME: a placeholder
                found.append((f"{doc.name}: {line.strip()}", sets))
    return found


@pytest.mark.parametrize("where, sets", documented_overrides(), ids=lambda v: str(v)[:60])
def test_every_documented_override_names_a_real_setting_that_takes_effect(where, sets):
    """Applying the command's -S values to params.yaml gives valid params in which each value
    reaches the recipe or section it names (placeholders like /path/to/file.h5 are fine). A
    comma-separated value is a sweep (`dvc exp run --queue`, docs/experiments.md): every
    combination of the grid is checked. The docs' commands are written for the default model: it
    is the one in use here, whatever a user's params.yaml picks."""
    for key, _ in sets:  # DVC (Hydra) sets a key params.yaml holds, and adds one with "+" only
        node, held = raw_params(), True
        for part in key.lstrip("+").split("."):
            held = isinstance(node, dict) and part in node
            node = node[part] if held else None
            if not held:
                break
        assert held != key.startswith("+"), (
            f"{where}: -S {key}: params.yaml {'holds' if held else 'does not hold'} it, so DVC needs "
            f"-S {key.lstrip('+') if held else '+' + key}")
    choices = [[(key.lstrip("+"), v) for v in (value.split(",") if value[0] not in "[{" else [value])]
               for key, value in sets]
    for combination in itertools.product(*choices):
        raw = raw_params({"model": DEFAULT_MODEL})
        for key, value in combination:
            node = raw
            *parents, leaf = key.split(".")
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = yaml.safe_load(value)
        params = parse_params(raw)
        for key, value in combination:
            if key.startswith("models."):
                family = key.split(".")[1]
                assert family == params.model, f"{where}: -S {key} changes a model that is not in use"


def test_docs_show_overrides_at_all():
    assert len(documented_overrides()) >= 3


def _builder_keywords(family: Family) -> dict:
    """The keyword arguments (name -> default) of the family's builder that params may set."""
    from agegender.model import networks

    build = getattr(networks, family.builder)
    fixed = {"input_shape", "age_output", "augment", "seed", *getattr(build, "keywords", {})}
    return {name: p.default for name, p in inspect.signature(build).parameters.items() if name not in fixed}


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_each_architecture_schema_is_its_builders_keyword_arguments(name):
    family = FAMILIES[name]
    schema = {key: field.default for key, field in family.architecture.model_fields.items()}
    assert schema == _builder_keywords(family)


def test_the_recorded_architectures_reach_the_builders_unchanged():
    """params.yaml's values as the builder took them before the schemas (a list where the
    default is a tuple iterates the same), the builder's defaults for the rest."""
    params = load_params(ROOT / "params.yaml")
    raw = raw_params()["models"]
    for name, recipe in params.models.items():
        settings = FAMILIES[name].settings(recipe)
        expected = {**_builder_keywords(FAMILIES[name]), **raw[name].get("architecture", {})}
        assert {k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()} == \
            {k: list(v) if isinstance(v, tuple) else v for k, v in expected.items()}, name


def test_a_recipe_made_in_code_is_checked_when_a_network_is_built():
    with pytest.raises(ParamsError, match=r"^models\.compact\.architecture\.stage_block: unknown key"):
        FAMILIES["compact"].settings(Recipe(architecture={"stage_block": [1]}))
    assert FAMILIES["vgg16"].settings(Recipe())["weights"] == "imagenet"


def test_reading_params_imports_no_tensorflow():
    """Every stage reads params, ingest and check_params included: reading them imports no model
    code, and checking them against the families (their schemas) no TensorFlow or Keras."""
    code = ("import sys; from agegender.params import load_params; load_params('params.yaml'); "
            "model = [m for m in sys.modules if m.startswith('agegender.model')]; assert not model, model; "
            "from agegender.model.families import load_family_params; load_family_params('params.yaml'); "
            "heavy = {'tensorflow', 'keras'} & set(sys.modules); assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_a_params_file_that_is_not_yaml_is_one_line_naming_where(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("data:\n  source: x\nmodel: [\n")
    with pytest.raises(ParamsError) as err:
        load_params(path)
    message = str(err.value)
    assert message.startswith(f"{path}: not valid YAML at line ") and "\n" not in message, message
