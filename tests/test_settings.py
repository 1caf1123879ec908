"""Settings declared once: a config dataclass field is a CLI flag without any CLI code."""

import argparse
import dataclasses

import pytest

from fer_utils import settings
from fer_utils.experiments.ablation import CHECKED_PARAMETERS, VARIED_FIELDS, GridConfig
from fer_utils.faces.preprocess_config import PreprocessConfig
from fer_utils.training.splits import PROTOCOLS
from fer_utils.training.train import TrainConfig


@dataclasses.dataclass
class TrainConfigWithOptimizer(TrainConfig):
    """A new training option: one more field on TrainConfig, nothing else."""

    optimizer: str = settings.setting("adam", help="named optimizer", choices=("adam", "sgd"))
    mixup_epochs: int = settings.setting(0, help="epochs of mixup at the start")
    mixup_alpha: float = settings.setting(0.0, help="mixup's beta-distribution parameter")
    probe_seeds: tuple[int, ...] = settings.setting((0,), help="seeds to probe")


def test_a_new_training_field_is_a_flag_with_help_choices_and_a_round_trip():
    parser = argparse.ArgumentParser()
    names = settings.add_arguments(parser, TrainConfigWithOptimizer)
    assert {"optimizer", "mixup_epochs", "mixup_alpha", "probe_seeds"} <= set(names)
    help_text = parser.format_help()
    assert "--optimizer {adam,sgd}" in help_text and "named optimizer" in help_text
    assert "--mixup-epochs" in help_text and "--mixup-alpha" in help_text
    args = parser.parse_args(
        ["--optimizer", "sgd", "--mixup-epochs", "3", "--probe-seeds", "1", "2", "--l1", "1e-3"]
    )
    config = settings.config_from_args(TrainConfigWithOptimizer, args)
    assert (config.optimizer, config.mixup_epochs, config.probe_seeds, config.l1) == ("sgd", 3, (1, 2), 0.001)
    assert config.learning_rate == TrainConfig().learning_rate  # untouched fields keep the dataclass default
    with pytest.raises(SystemExit):
        parser.parse_args(["--optimizer", "fancy"])


def test_fer_train_and_fer_ablate_offer_every_train_config_field():
    from fer_utils.cli import build_parser

    parser = build_parser(["train", "ablate"])
    subcommands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    train_flags = set(subcommands["train"]._option_string_actions)
    ablate_flags = set(subcommands["ablate"]._option_string_actions)
    for field in settings.cli_fields(TrainConfig):
        assert settings.flag_name(field) in train_flags, field.name
        if field.name not in VARIED_FIELDS:
            assert settings.flag_name(field) in ablate_flags, field.name
    protocol = subcommands["ablate"]._option_string_actions["--protocol"]
    assert tuple(protocol.choices) == tuple(PROTOCOLS)
    assert subcommands["train"]._option_string_actions["--run-dir"].dest == "out"  # deprecated alias


def test_train_cli_round_trips_into_train_config():
    from fer_utils.cli import build_parser

    args = build_parser(["train"]).parse_args(
        ["train", "--cache", "c", "--out", "r", "--dropout", "0.3", "0.5", "0.5", "--patience", "4"]
    )
    config = settings.config_from_args(TrainConfig, args)
    assert config.dropout == (0.3, 0.5, 0.5) and config.early_stopping_patience == 4
    # The one flag default that differs from the dataclass: a single `fer train` uses every core.
    expected = dataclasses.replace(TrainConfig(), dropout=(0.3, 0.5, 0.5), early_stopping_patience=4)
    assert config == dataclasses.replace(expected, threads=None) and TrainConfig().threads == 1
    pinned = build_parser(["train"]).parse_args(["train", "--cache", "c", "--out", "r", "--threads", "1"])
    assert settings.config_from_args(TrainConfig, pinned).threads == 1


def test_staleness_check_and_optional_values_derive_from_the_dataclasses():
    assert set(CHECKED_PARAMETERS) == {
        f.name
        for f in dataclasses.fields(TrainConfig)
        if f.name not in ("extra", "in_memory_limit_mb", "threads", "allow_duplicate_leakage")
    } | {"cache_key"}
    parser = argparse.ArgumentParser()
    settings.add_arguments(parser, PreprocessConfig)
    args = parser.parse_args(["--detect-width", "none", "--frames", "4", "--align"])
    config = settings.config_from_args(PreprocessConfig, args)
    assert config.detect_width is None and config.frames_per_video == 4 and config.align is True


PROBE = """
import sys
from fer_utils.cli import main
try:
    main(["--help"])
except SystemExit:
    pass
print(sorted(m for m in sys.modules if m.startswith(("fer_utils.", "numpy", "pandas"))))
"""


def test_fer_help_imports_no_stage_module():
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "['fer_utils.cli']"


#: Notebook parameters whose default differs from the dataclass field of the same name on purpose.
NOTEBOOK_DEFAULT_EXCEPTIONS = {
    # as opened, notebook 03 runs a quick grid (its parameters cell says so): 2 × 2 configurations, 1 seed
    ("03_regularization_ablation", "epochs"): "quick grid",
    ("03_regularization_ablation", "l1s"): "quick grid",
    ("03_regularization_ablation", "n_seeds"): "quick grid",
}


@pytest.mark.parametrize(
    ("notebook", "config_class"),
    [
        ("01_preprocessing", PreprocessConfig),
        ("02_training", TrainConfig),
        ("03_regularization_ablation", TrainConfig),
        ("03_regularization_ablation", GridConfig),
    ],
)
def test_notebook_parameter_defaults_are_the_dataclass_defaults(notebook, config_class):
    """Papermill needs literal defaults in the parameters cell; they must be the dataclass's, so that a
    notebook run as opened and the CLI run the same configuration."""
    import ast

    import papermill

    from fer_utils.paths import NOTEBOOKS_DIR

    parameters = papermill.inspect_notebook(str(NOTEBOOKS_DIR / f"{notebook}.ipynb"))
    fields = {field.name: field for field in dataclasses.fields(config_class)}
    shared = sorted(set(parameters) & set(fields))
    assert shared, f"{notebook} sets no {config_class.__name__} field"
    for name in shared:
        if (notebook, name) in NOTEBOOK_DEFAULT_EXCEPTIONS:
            continue
        field = fields[name]
        default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
        value = ast.literal_eval(parameters[name]["default"])
        value = tuple(value) if isinstance(default, tuple) and isinstance(value, list) else value
        assert value == default, f"{notebook}: {name} = {value!r}, {config_class.__name__} says {default!r}"


def test_unknown_notebook_parameters_are_named_with_the_closest_field():
    """The kernel's check reads the parameter-like globals (literals; not modules, functions or IPython's
    names), whatever header papermill gave the cell it injected."""
    import nbformat

    from fer_utils.notebook_execution import namespace_parameters, refuse_unknown_parameters
    from fer_utils.paths import NOTEBOOKS_DIR
    from fer_utils.settings import field_names

    notebook = NOTEBOOKS_DIR / "02_training.ipynb"
    parameters_cell = next(
        cell.source
        for cell in nbformat.read(notebook, as_version=4).cells
        if "parameters" in cell.metadata.get("tags", [])
    )
    kernel: dict = {"In": ["", parameters_cell], "get_ipython": print, "pytest": pytest, "_": 1}
    exec(parameters_cell, kernel)
    kernel.pop("__builtins__")
    accepted = field_names(TrainConfig)
    assert "pytest" not in namespace_parameters(kernel) and "In" not in namespace_parameters(kernel)
    refuse_unknown_parameters(kernel, notebook, accepted)  # opened by hand: nothing injected
    injected = kernel | {"learnig_rate": 0.01, "epochs": 1, "warmup_epochs": 2}
    with pytest.raises(
        ValueError,
        match=r"^02_training.ipynb: unknown notebook parameter 'learnig_rate' \(did you mean 'learning_rate'\?\)$",
    ):
        refuse_unknown_parameters(injected, notebook, accepted)


@pytest.mark.parametrize("notebook", ["02_training.ipynb", "03_regularization_ablation.ipynb"])
def test_the_host_refuses_an_unknown_notebook_parameter_before_any_kernel_starts(
    notebook, tmp_path, monkeypatch
):
    """``execute_notebook`` (``fer run`` / ``fer ablate``) checks the names against the notebook's cells and
    the config fields, with the kernel's one-line message, and never reaches papermill."""
    import sys

    from fer_utils.experiments.ablation.grid import NOTEBOOK_FIELDS
    from fer_utils.notebook_execution import check_parameters, execute_notebook
    from fer_utils.paths import NOTEBOOKS_DIR

    monkeypatch.setitem(sys.modules, "papermill", None)  # importing it would fail: no kernel may start
    output = tmp_path / "out.ipynb"
    with pytest.raises(
        ValueError,
        match=rf"^{notebook}: unknown notebook parameter 'learnig_rate' \(did you mean 'learning_rate'\?\)$",
    ):
        execute_notebook(
            NOTEBOOKS_DIR / notebook,
            output,
            {"learnig_rate": 0.01, "epochs": 1},
            tmp_path,
            accepted=NOTEBOOK_FIELDS,
        )
    assert not output.exists()
    # every config field and every name the notebook assigns passes (cache_dir: its parameters cell)
    check_parameters(
        NOTEBOOKS_DIR / notebook,
        {"cache_dir": "", "warmup_epochs": 2, "dropout": [0.3, 0.5, 0.5]},
        NOTEBOOK_FIELDS,
    )


def test_requested_and_resolved_input_size_are_recorded_apart_and_old_files_migrate():
    """config.json (schema 2) holds ``input_size`` as asked (None: the cache's) beside the resolved
    ``image_size``; a version-1 file's ``image_size`` (resolved over requested) becomes both. A request of
    None on a 64 px cache is the same run as an explicit 64, so neither is refused as stale."""
    from fer_utils.training.config import effective_settings, setting_mismatches
    from fer_utils.training.results import RunConfig

    new = RunConfig.from_json({"schema_version": 2, "input_size": None, "image_size": 64, "epochs": 3})
    assert new.setting("input_size") is None and new.image_size == 64
    assert new.to_json()["input_size"] is None and new.to_json()["image_size"] == 64
    old = RunConfig.from_json({"image_size": 64, "epochs": 3})
    assert old.setting("input_size") == 64 and old.image_size == 64
    recorded = new.to_json()
    asked = dataclasses.asdict(TrainConfig(epochs=3))
    assert setting_mismatches(effective_settings(recorded), effective_settings(asked, face_size=64)) == []
    assert setting_mismatches(
        effective_settings(recorded), effective_settings({**asked, "input_size": 48})
    ) == ["input_size 64 ≠ 48"]


def test_a_former_flag_on_the_command_line_is_one_clean_warning_line():
    """``fer ablate --seeds 3``: one ``fer ablate: warning: …`` line naming the old and the new flag, not a
    FutureWarning located in argparse followed by argparse's source line."""
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "fer_utils.cli", "ablate", "--seeds", "3", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stderr.splitlines() == [
        "fer ablate: warning: '--seeds' is renamed '--n-seeds': the old name still works in this release only"
    ]
    assert "argparse" not in result.stderr and ".py" not in result.stderr


def test_the_former_image_size_names_still_work_with_a_warning_and_caches_keep_their_keys():
    """``image_size`` was the crop (preprocess) and the training resize (train): now ``face_size`` and
    ``input_size``; the old name is accepted for one release with a FutureWarning, and a face cache's
    stored field (and so its folder's hash) is unchanged."""
    from fer_utils import cli
    from fer_utils.faces.cache import config_key
    from fer_utils.faces.preprocess_config import PreprocessConfig, cache_config

    with pytest.warns(FutureWarning, match="'image_size' is renamed 'input_size'"):
        assert settings.config_from_args(TrainConfig, {"image_size": 48}).input_size == 48
    with pytest.warns(FutureWarning, match="'image_size' is renamed 'face_size'"):
        assert settings.config_from_args(PreprocessConfig, {"image_size": 64}).face_size == 64
    with pytest.warns(FutureWarning, match="'--image-size' is renamed '--input-size'"):
        assert (
            cli.build_parser()
            .parse_args(["train", "--cache", "c", "--out", "o", "--image-size", "32"])
            .input_size
            == 32
        )
    with pytest.warns(FutureWarning, match="'--image-size' is renamed '--face-size'"):
        assert (
            cli.build_parser()
            .parse_args(["preprocess", "--dataset", "ravdess", "--image-size", "32"])
            .face_size
            == 32
        )
    stored = cache_config(PreprocessConfig(face_size=64), "toy")
    assert stored["face_size"] == 64 and "image_size" not in stored  # hashed under the former name
    before = {"dataset": "toy", "pipeline_version": stored["pipeline_version"]} | {
        "image_size": 64,
        **{k: v for k, v in dataclasses.asdict(PreprocessConfig()).items() if k != "face_size"},
    }
    assert config_key(stored) == config_key(before)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["train", "--learnig-rate", "0.01", "--cache", "c"],
            "fer train: error: unrecognized argument --learnig-rate (did you mean '--learning-rate'?)",
        ),
        (
            ["ablate", "--n-sed", "2"],
            "fer ablate: error: unrecognized argument --n-sed (did you mean '--n-seeds'?)",
        ),
        (
            ["run", "--ablation-epoch=2", "--rerum"],
            "fer run: error: unrecognized argument --rerum (did you mean '--rerun'?)",
        ),
        (
            ["predict", "x.jpg", "--outt", "p"],
            "fer predict: error: unrecognized argument --outt (did you mean '--out'?)",
        ),
        (
            ["preprocess", "--face-sise", "48"],
            "fer preprocess: error: unrecognized argument --face-sise (did you mean '--face-size'?)",
        ),
        (["trian", "--cache", "c"], "fer: error: unknown command 'trian' (did you mean 'train'?)"),
    ],
)
def test_a_misspelled_flag_or_command_gets_the_closest_name_in_one_line(argv, message, capsys):
    """Issue 31, finding 12: `fer train --learnig-rate` printed the top-level usage and no suggestion, where
    the same typo as a notebook parameter gets "did you mean 'learning_rate'?"."""
    from fer_utils import cli

    assert cli.main(argv) == 2
    printed = capsys.readouterr()
    assert printed.err.startswith(message) and printed.err.count("\n") == 1 and "usage:" not in printed.err
    assert printed.out == ""


def test_every_flag_of_every_command_and_its_unique_prefix_is_known():
    """No false alarm: each subcommand's own flags (and argparse's abbreviations) pass the spelling check."""
    from fer_utils import cli

    for command in cli.COMMANDS:
        parser = cli.build_parser([command])
        subparser = next(
            action.choices[command]
            for action in parser._actions
            if isinstance(action, argparse._SubParsersAction)
        )
        for flag in (option for option in subparser._option_string_actions if option.startswith("--")):
            assert cli.misspelled(parser, [command, flag], command) is None, (command, flag)
    assert cli.misspelled(cli.build_parser(["run"]), ["run", "--epoch", "3"], "run") is None
