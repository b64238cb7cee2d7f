"""Every command refuses bad input the same way: exit 2, one line, no traceback, nothing written.

One table row per (command, bad input). Each row builds its tiny input inside ``tmp_path``, the
directory tree is snapshotted (paths, sizes, mtimes, hashes; directory mtimes too, so a file
created and removed again is noticed), the command runs in-process, and the snapshot must be
unchanged afterwards.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from reliability_builders import (
    QUIET,
    damage_store,
    diff_snapshots,
    set_store_version,
    snapshot,
    stores,
    tiny_volume,
    truncate,
    write_f3_dir,
    write_image_folder,
    write_segy,
)

from helpers import assert_user_error, run_cli


class Inputs:
    """What a table row may build: everything lands under ``tmp``."""

    def __init__(self, tmp: Path, survey: Path, run: Path) -> None:
        self.tmp = tmp
        self._survey = survey
        self._run = run

    def path(self, name: str) -> Path:
        return self.tmp / name

    def f3(self, **arrays) -> str:
        return f"f3:{write_f3_dir(self.tmp / 'survey', **arrays)}"

    def f3_with(self, edit: Callable[[Path], None]) -> str:
        root = write_f3_dir(self.tmp / "survey")
        edit(root)
        return f"f3:{root}"

    def run(self, edit: Callable[[Path], None] | None = None) -> Path:
        """A copy of the finished tiny run, optionally edited."""
        target = self.tmp / "run"
        shutil.copytree(self._run, target)
        if edit is not None:
            edit(target)
        return target

    def survey(self) -> Path:
        """A copy of the valid tiny survey (trains in a second)."""
        target = self.tmp / "tiny"
        shutil.copytree(self._survey, target)
        return target

    def segy(self, cube: np.ndarray | None = None) -> Path:
        return write_segy(self.tmp / "cube.sgy", tiny_volume()[0] if cube is None else cube)

    def labels_npy(self, labels: np.ndarray | None = None) -> Path:
        path = self.tmp / "labels.npy"
        np.save(path, tiny_volume()[1] if labels is None else labels)
        return path


@dataclass
class Case:
    id: str
    argv: Callable[[Inputs], list]
    fragments: tuple[str, ...]


def _bad_labels():
    labels = tiny_volume()[1]
    labels[0, 0, :3] = [6, 9, 200]
    return labels


def _with_nan():
    seismic = tiny_volume()[0]
    seismic[1, 2, 3] = np.nan
    return seismic


def _with_inf():
    seismic = tiny_volume()[0]
    seismic[0, 0, 0] = np.inf
    return seismic


def _truncate_train_seismic(root: Path) -> None:
    truncate(root / "train" / "train_seismic.npy")


def _garbage_train_labels(root: Path) -> None:
    (root / "train" / "train_labels.npy").write_bytes(np.random.default_rng(0).bytes(300))


def _pickled_train_labels(root: Path) -> None:
    # An object array needs pickle to load: it must be refused, not unpickled.
    np.save(root / "train" / "train_labels.npy", np.array([{"a": 1}], dtype=object))


def _missing_train_labels(root: Path) -> None:
    (root / "train" / "train_labels.npy").unlink()


def _bad_survey_json(root: Path) -> None:
    (root / "survey.json").write_text("{not json")


def _images(inputs: Inputs, **kwargs) -> str:
    return f"images:{write_image_folder(inputs.tmp / 'imgs', **kwargs)}"


def _no_masks(inputs: Inputs) -> str:
    root = write_image_folder(inputs.tmp / "imgs")
    shutil.rmtree(root / "masks")
    return f"images:{root}"


def _corrupt_image(inputs: Inputs) -> str:
    root = write_image_folder(inputs.tmp / "imgs")
    (root / "images" / "img1.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return f"images:{root}"


def _config_file(inputs: Inputs, text: str) -> Path:
    path = inputs.path("config.yaml")
    path.write_text(text)
    return path


def _run_with_config_edit(edit: Callable[[dict], None]) -> Callable[[Path], None]:
    def apply(run_dir: Path) -> None:
        config = yaml.safe_load((run_dir / "config.yaml").read_text())
        edit(config)
        (run_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))

    return apply


def _without_checkpoints(run_dir: Path) -> None:
    shutil.rmtree(run_dir / "checkpoints")
    (run_dir / "metrics.json").unlink()


def _truncated_checkpoint(run_dir: Path) -> None:
    truncate(run_dir / "checkpoints" / "last.pt")


def _foreign_checkpoint(run_dir: Path) -> None:
    # A checkpoint of another model (a dict of tensors with other names and shapes).
    torch.save({"weight": torch.zeros(3)}, run_dir / "checkpoints" / "last.pt")


def _all_stores(action: Callable[[Path], None]) -> Callable[[Path], None]:
    def apply(run_dir: Path) -> None:
        for store in stores(run_dir):
            action(store)

    return apply


FUTURE_STORE = _all_stores(lambda s: set_store_version(s, 99))
MISSING_CHUNK = _all_stores(lambda s: damage_store(s, "missing-chunk"))
CORRUPT_CHUNK = _all_stores(lambda s: damage_store(s, "corrupt-chunk"))
MISSING_ARRAY = _all_stores(lambda s: damage_store(s, "missing-array"))


def _train(spec: str, *extra, out: str | Path = "newrun") -> list:
    return ["train", "--data", spec, "--model", "tiny", "--out", out, *extra, *QUIET]


def _train_tiny(inputs: Inputs, *extra, out: str | Path = "newrun") -> list:
    return _train(f"f3:{inputs.survey()}", *extra, out=out)


def _al_sim_tiny(inputs: Inputs, *extra) -> list:
    """al-sim on the valid tiny survey with ``extra`` options (one of them the bad input)."""
    return ["al-sim", "--out", "a", "--data", f"f3:{inputs.survey()}", *extra]


DATA_CASES: list[tuple[str, Callable[[Inputs], str], tuple[str, ...]]] = [
    ("missing-dir", lambda i: f"f3:{i.path('nope')}", ("no such directory", "segforget synth")),
    ("missing-file", lambda i: i.f3_with(_missing_train_labels), ("train_labels.npy", "exist")),
    (
        "shape-mismatch",
        lambda i: i.f3(labels=tiny_volume((4, 6, 15))[1]),
        ("shape", "(4, 6, 16)", "(4, 6, 15)"),
    ),
    ("labels-out-of-range", lambda i: i.f3(labels=_bad_labels()), ("labels 0..5", "[6, 9, 200]")),
    (
        "negative-labels",
        lambda i: i.f3(labels=-tiny_volume()[1].astype(np.int16) - 1),
        ("labels 0..5",),
    ),
    ("nan", lambda i: i.f3(seismic=_with_nan()), ("finite", "NaN", "nan_to_num")),
    ("inf", lambda i: i.f3(seismic=_with_inf()), ("finite", "NaN/inf")),
    ("empty", lambda i: i.f3(seismic=np.zeros((0, 6, 16), np.float32)), ("non-empty",)),
    (
        "complex-dtype",
        lambda i: i.f3(seismic=tiny_volume()[0].astype(np.complex64)),
        ("real numbers", "complex64"),
    ),
    (
        "float-labels",
        lambda i: i.f3(labels=tiny_volume()[1] + np.float32(0.5)),
        ("integer class labels",),
    ),
    ("truncated-npy", lambda i: i.f3_with(_truncate_train_seismic), ("corrupt", "numpy.save")),
    ("garbage-npy", lambda i: i.f3_with(_garbage_train_labels), ("train_labels.npy", "numpy.save")),
    ("pickled-npy", lambda i: i.f3_with(_pickled_train_labels), ("train_labels.npy",)),
    ("bad-survey-json", lambda i: i.f3_with(_bad_survey_json), ("survey.json", "JSON")),
    ("images-missing-dir", lambda i: f"images:{i.path('nope')}", ("no such folder",)),
    ("images-missing-mask", lambda i: _images(i, missing_mask="img2"), ("mask", "img2")),
    ("images-no-masks-folder", _no_masks, ("masks", "no such folder")),
    ("images-corrupt", _corrupt_image, ("img1.png", "readable image")),
    ("bad-spec", lambda i: "nope:x", ("spec", "nope:x")),
]

CASES: list[Case] = []
for _name, _spec, _fragments in DATA_CASES:
    CASES.append(
        Case(f"data-info-{_name}", lambda i, s=_spec: ["data", "info", "--data", s(i)], _fragments)
    )
    CASES.append(Case(f"train-{_name}", lambda i, s=_spec: _train(s(i)), _fragments))

CASES += [
    # -- train: configuration
    Case("train-key-typo", lambda i: _train_tiny(i, "--set", "train.epoch=3"), ("train.epoch",)),
    Case(
        "train-config-file-typo",
        lambda i: _train_tiny(i, "--config", _config_file(i, "train: {epoch: 3}\n")),
        ("train.epoch", "train.epochs"),
    ),
    Case(
        "train-config-file-section-typo",
        lambda i: _train_tiny(i, "--config", _config_file(i, "trian: {epochs: 3}\n")),
        ("section", "trian"),
    ),
    Case(
        "train-config-file-not-utf8",
        lambda i: _train_tiny(i, "--config", _write(i.path("c.yaml"), b"train: \xff\xfe\n")),
        ("valid YAML", "c.yaml"),
    ),
    Case(
        "train-config-file-not-yaml",
        lambda i: _train_tiny(i, "--config", _config_file(i, "train: [1, 2\n")),
        ("valid YAML",),
    ),
    Case(
        "train-config-file-missing",
        lambda i: _train_tiny(i, "--config", i.path("none.yaml")),
        ("--config", "none.yaml"),
    ),
    Case("train-negative-epochs", lambda i: _train_tiny(i, "--epochs", "-1"), ("train.epochs",)),
    Case("train-zero-batch", lambda i: _train_tiny(i, "--batch-size", "0"), ("train.batch_size",)),
    Case("train-negative-lr", lambda i: _train_tiny(i, "--lr", "-1"), ("train.lr",)),
    Case(
        "train-bad-value-type",
        lambda i: _train_tiny(i, "--set", "train.epochs=three"),
        ("train.epochs",),
    ),
    Case("train-unknown-device", lambda i: _train_tiny(i, "--device", "tpu"), ("--device", "tpu")),
    Case("train-unknown-model", lambda i: _train_tiny(i, "--model", "nope-x"), ("model",)),
    Case("train-unknown-method", lambda i: _train_tiny(i, "--method", "nope"), ("nope",)),
    Case("train-unknown-view", lambda i: _train_tiny(i, "--set", "data.views=[depth]"), ("view",)),
    # -- train: run directory
    Case(
        "train-existing-run-without-force",
        lambda i: _train_tiny(i, out=i.run()),
        ("not to exist", "--force"),
    ),
    Case(
        "train-force-on-non-run-dir",
        lambda i: _train_tiny(i, "--force", out=_mkdir(i.path("precious"))),
        ("refusing to delete",),
    ),
    Case(
        "train-resume-missing-dir",
        lambda i: ["train", "--out", i.path("nope"), "--resume"],
        ("nope",),
    ),
    Case(
        "train-resume-without-checkpoint",
        lambda i: ["train", "--out", i.run(_without_checkpoints), "--resume"],
        ("checkpoints/last.pt",),
    ),
    Case(
        "train-resume-incompatible-model",
        lambda i: [
            "train",
            "--out",
            i.run(_run_with_config_edit(lambda c: c["model"].update(name="light"))),
            "--resume",
        ],
        ("checkpoint", "model"),
    ),
    Case(
        "train-resume-incompatible-data",
        lambda i: [
            "train",
            "--out",
            i.run(_run_with_config_edit(lambda c: c["data"].update(views=["inline"]))),
            "--resume",
        ],
        ("checkpoint",),
    ),
    Case(
        "train-resume-fewer-epochs",
        lambda i: ["train", "--out", i.run(), "--resume", "--epochs", "1"],
        ("--epochs", "at least the 2 epochs"),
    ),
    Case(
        "train-resume-garbled-config",
        lambda i: [
            "train",
            "--out",
            i.run(lambda r: _write(r / "config.yaml", b"- 1")),
            "--resume",
        ],
        ("config.yaml", "mapping"),
    ),
    Case(
        "train-resume-foreign-checkpoint",
        lambda i: ["train", "--out", i.run(_foreign_checkpoint), "--resume"],
        ("checkpoint",),
    ),
    Case(
        "train-resume-truncated-checkpoint",
        lambda i: ["train", "--out", i.run(_truncated_checkpoint), "--resume"],
        ("checkpoint", "last.pt"),
    ),
    Case(
        "train-resume-config-typo",
        lambda i: [
            "train",
            "--out",
            i.run(_run_with_config_edit(lambda c: c["train"].update(epoch=3))),
            "--resume",
        ],
        ("train.epoch",),
    ),
    Case(
        "train-resume-negative-epochs",
        lambda i: ["train", "--out", i.run(), "--resume", "--epochs", "-1"],
        ("epochs",),
    ),
    # -- import-segy
    Case(
        "segy-missing-file",
        lambda i: ["import-segy", i.path("no.sgy"), "--labels", i.labels_npy(), "--out", "o"],
        ("no.sgy", "no such file"),
    ),
    Case(
        "segy-missing-labels",
        lambda i: ["import-segy", i.segy(), "--labels", i.path("no.npy"), "--out", "o"],
        ("no.npy",),
    ),
    Case(
        "segy-truncated",
        lambda i: ["import-segy", truncate(i.segy()), "--labels", i.labels_npy(), "--out", "o"],
        ("cube.sgy", "truncated"),
    ),
    Case(
        "segy-truncated-in-traces",
        lambda i: [
            "import-segy",
            truncate(i.segy(), keep=0.9),
            "--labels",
            i.labels_npy(),
            "--out",
            "o",
        ],
        ("cube.sgy",),
    ),
    Case(
        "segy-not-segy",
        lambda i: [
            "import-segy",
            _write(i.path("cube.sgy"), np.random.default_rng(1).bytes(5000)),
            "--labels",
            i.labels_npy(),
            "--out",
            "o",
        ],
        ("cube.sgy",),
    ),
    Case(
        "segy-geometry-not-inferable",
        lambda i: [
            "import-segy",
            i.segy(),
            "--labels",
            i.labels_npy(),
            "--out",
            "o",
            "--iline",
            "9",
            "--xline",
            "21",
        ],
        ("geometry", "--iline"),
    ),
    Case(
        "segy-header-byte-out-of-range",
        lambda i: [
            "import-segy",
            i.segy(),
            "--labels",
            i.labels_npy(),
            "--out",
            "o",
            "--iline",
            "0",
        ],
        ("iline",),
    ),
    Case(
        "segy-shape-mismatch",
        lambda i: [
            "import-segy",
            i.segy(),
            "--labels",
            i.labels_npy(tiny_volume((4, 6, 15))[1]),
            "--out",
            "o",
        ],
        ("shape", "(4, 6, 16)"),
    ),
    Case(
        "segy-labels-negative",
        lambda i: [
            "import-segy",
            i.segy(),
            "--labels",
            i.labels_npy(tiny_volume()[1].astype(np.int16) - 3),
            "--out",
            "o",
        ],
        ("labels",),
    ),
    Case(
        "segy-labels-too-large",
        lambda i: [
            "import-segy",
            i.segy(),
            "--labels",
            i.labels_npy(tiny_volume()[1].astype(np.int16) + 300),
            "--out",
            "o",
        ],
        ("labels",),
    ),
    Case(
        "segy-nan",
        lambda i: ["import-segy", i.segy(_with_nan()), "--labels", i.labels_npy(), "--out", "o"],
        ("NaN",),
    ),
    Case(
        "segy-complex-labels",
        lambda i: [
            "import-segy",
            i.segy(),
            "--labels",
            i.labels_npy(tiny_volume()[1].astype(np.complex64)),
            "--out",
            "o",
        ],
        ("labels.npy",),
    ),
    Case(
        "segy-truncated-labels-npy",
        lambda i: [
            "import-segy",
            i.segy(),
            "--labels",
            truncate(i.labels_npy()),
            "--out",
            "o",
        ],
        ("labels.npy", "corrupt"),
    ),
    Case(
        "segy-existing-out",
        lambda i: [
            "import-segy",
            i.segy(),
            "--labels",
            i.labels_npy(),
            "--out",
            _mkdir(i.path("o")),
        ],
        ("not to exist", "--force"),
    ),
    Case(
        "segy-bad-test-range",
        lambda i: [
            "import-segy",
            i.segy(),
            "--labels",
            i.labels_npy(),
            "--out",
            "o",
            "--test1-inlines",
            "1:2",
        ],
        ("test1_inlines",),
    ),
    # -- synth
    Case("synth-existing-out", lambda i: ["synth", "--out", _mkdir(i.path("o"))], ("--force",)),
    Case(
        "synth-unknown-preset", lambda i: ["synth", "--out", "o", "--preset", "huge"], ("preset",)
    ),
    Case("synth-negative-snr", lambda i: ["synth", "--out", "o", "--snr", "-1"], ("snr",)),
    Case(
        "synth-too-many-faults", lambda i: ["synth", "--out", "o", "--faults", "101"], ("at most",)
    ),
    Case(
        "al-sim-patch-larger-than-sections",
        lambda i: _al_sim_tiny(i, "--patch", "1000"),
        ("fit in the sections",),
    ),
    Case("synth-no-out", lambda i: ["synth"], ("--out",)),
    # -- analyze / report / select / label-issues on a run
    Case("analyze-missing-run", lambda i: ["analyze", i.path("nope")], ("nope",)),
    Case("analyze-not-a-run", lambda i: ["analyze", _mkdir(i.path("empty"))], ("config.yaml",)),
    Case("analyze-future-store", lambda i: ["analyze", i.run(FUTURE_STORE)], ("version", "99")),
    Case("analyze-missing-chunk", lambda i: ["analyze", i.run(MISSING_CHUNK)], ("damaged",)),
    Case("analyze-corrupt-chunk", lambda i: ["analyze", i.run(CORRUPT_CHUNK)], ("intact",)),
    Case("analyze-missing-array", lambda i: ["analyze", i.run(MISSING_ARRAY)], ("intact",)),
    Case("analyze-negative-k", lambda i: ["analyze", i.run(), "--k", "-1"], ("k",)),
    Case("report-missing-run", lambda i: ["report", i.path("nope")], ("nope",)),
    Case("report-future-store", lambda i: ["report", i.run(FUTURE_STORE)], ("version",)),
    Case("report-corrupt-chunk", lambda i: ["report", i.run(CORRUPT_CHUNK)], ("intact",)),
    Case("select-missing-run", lambda i: ["select", i.path("nope")], ("nope",)),
    Case("select-future-store", lambda i: ["select", i.run(FUTURE_STORE)], ("version",)),
    Case("select-missing-chunk", lambda i: ["select", i.run(MISSING_CHUNK)], ("damaged",)),
    Case("select-corrupt-chunk", lambda i: ["select", i.run(CORRUPT_CHUNK)], ("intact",)),
    Case("select-zero-n", lambda i: ["select", i.run(), "--n", "0"], ("--n",)),
    Case(
        "label-issues-negative-display",
        lambda i: ["label-issues", i.run(), "--display", "-1"],
        ("--display",),
    ),
    Case(
        "train-data-is-a-file",
        lambda i: ["train", "--data", f"f3:{_write(i.path('f'), b'x')}", "--out", i.path("r")],
        ("got a file",),
    ),
    Case(
        "train-class-names-not-a-list",
        lambda i: [
            "train",
            "--data",
            i.f3_with(lambda root: (root / "survey.json").write_text('{"class_names": "abc"}')),
            "--out",
            i.path("r"),
        ],
        ("class_names", "list of distinct"),
    ),
    Case("select-negative-seed", lambda i: ["select", i.run(), "--seed", "-1"], ("--seed",)),
    Case(
        "select-unknown-device",
        lambda i: ["select", i.run(), "--strategy", "entropy", "--device", "tpu"],
        ("--device", "tpu"),
    ),
    Case("select-unknown-view", lambda i: ["select", i.run(), "--view", "x"], ("`view`", "'x'")),
    Case("select-unknown-mode", lambda i: ["select", i.run(), "--mode", "x"], ("`mode`", "'x'")),
    Case(
        "select-existing-out",
        lambda i: ["select", i.run(), "--out", _write(i.path("x.csv"), b"keep")],
        ("--force",),
    ),
    Case("label-issues-missing-run", lambda i: ["label-issues", i.path("nope")], ("nope",)),
    Case(
        "label-issues-future-store", lambda i: ["label-issues", i.run(FUTURE_STORE)], ("version",)
    ),
    Case(
        "label-issues-missing-chunk",
        lambda i: ["label-issues", i.run(MISSING_CHUNK)],
        ("damaged",),
    ),
    Case(
        "label-issues-corrupt-chunk",
        lambda i: ["label-issues", i.run(CORRUPT_CHUNK)],
        ("intact",),
    ),
    Case(
        "label-issues-bad-fraction",
        lambda i: ["label-issues", i.run(), "--fraction", "2"],
        ("--fraction",),
    ),
    Case(
        "label-issues-existing-out",
        lambda i: ["label-issues", i.run(), "--out", _mkdir(i.path("li"))],
        ("--force",),
    ),
    # -- benchmark / al-sim / demo
    Case(
        "benchmark-bad-data",
        lambda i: ["benchmark", "--out", "b", "--data", i.f3(seismic=_with_nan())],
        ("NaN",),
    ),
    Case(
        "benchmark-unknown-method",
        lambda i: ["benchmark", "--out", "b", "--data", f"f3:{i.survey()}", "--methods", "nope"],
        ("nope",),
    ),
    Case(
        "benchmark-bad-options",
        lambda i: ["benchmark", "--out", "b", "--options", "{not json"],
        ("--options",),
    ),
    Case(
        "benchmark-force-on-non-benchmark-dir",
        lambda i: [
            "benchmark",
            "--out",
            _mkdir(i.path("precious")),
            "--force",
            "--data",
            f"f3:{i.survey()}",
            "--model",
            "tiny",
        ],
        ("refusing to delete",),
    ),
    Case(
        "benchmark-unknown-device",
        lambda i: ["benchmark", "--out", "b", "--data", f"f3:{i.survey()}", "--device", "tpu"],
        ("--device", "tpu"),
    ),
    Case(
        "al-sim-bad-data",
        lambda i: ["al-sim", "--out", "a", "--data", i.f3(labels=_bad_labels())],
        ("labels 0..5",),
    ),
    Case(
        "al-sim-zero-rounds",
        lambda i: _al_sim_tiny(i, "--rounds", "0"),
        ("--rounds",),
    ),
    Case(
        "al-sim-unknown-device",
        lambda i: _al_sim_tiny(i, "--device", "tpu"),
        ("--device", "tpu"),
    ),
    Case(
        "al-sim-negative-seed",
        lambda i: _al_sim_tiny(i, "--seeds", "0,-1"),
        ("--seeds",),
    ),
    Case(
        "al-sim-negative-lr",
        lambda i: _al_sim_tiny(i, "--lr", "-1"),
        ("--lr",),
    ),
    Case("demo-out-is-a-file", lambda i: ["demo", "--out", _write(i.path("f"), b"x")], ("f",)),
]


def _long_run_cases(command: str) -> list[Case]:
    """The checks ``benchmark`` and ``al-sim`` share: data, counts, an existing output."""

    def argv(*extra):
        return lambda i: [command, "--out", "o", "--data", f"f3:{i.survey()}", *extra]

    return [
        Case(
            f"{command}-missing-data",
            lambda i: [command, "--out", "o", "--data", f"f3:{i.path('nope')}"],
            ("no such directory",),
        ),
        Case(f"{command}-negative-epochs", argv("--epochs", "-1"), ("epochs",)),
        Case(f"{command}-zero-batch", argv("--batch-size", "0"), ("batch",)),
        Case(
            f"{command}-existing-out",
            lambda i: [command, "--out", _mkdir(i.path("o")), "--data", f"f3:{i.survey()}"],
            ("--force",),
        ),
    ]


CASES += [case for command in ("benchmark", "al-sim") for case in _long_run_cases(command)]


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _mkdir(path: Path) -> Path:
    path.mkdir()
    (path / "keep.txt").write_text("precious")
    return path


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_refused_cleanly(case, tmp_path, tiny_survey, finished_run, monkeypatch):
    # Relative outputs and the synthetic-data cache land inside the snapshotted directory.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SEGFORGET_CACHE", str(tmp_path / "cache"))
    inputs = Inputs(tmp_path, tiny_survey, finished_run)
    argv = case.argv(inputs)
    before = snapshot(tmp_path)
    threads = torch.get_num_threads()
    try:
        result = run_cli(argv)
    finally:
        torch.set_num_threads(threads)
    assert_user_error(result, *case.fragments)
    assert result.stderr.startswith("error: "), result.stderr
    assert diff_snapshots(before, snapshot(tmp_path)) == []


def _commands() -> set[str]:
    from segforget.cli import app

    names = {c.name for c in app.registered_commands}
    for group in app.registered_groups:
        names |= {f"{group.name} {c.name}" for c in group.typer_instance.registered_commands}
    return names


#: Row-id prefixes of commands whose rows are named differently.
_PREFIXES = {"import-segy": "segy-", "data info": "data-info-"}


def test_every_command_has_rows():
    missing = []
    for command in _commands() - {"env"}:  # `env` reads no input
        prefix = _PREFIXES.get(command, f"{command}-")
        if not any(c.id.startswith(prefix) for c in CASES):
            missing.append(command)
    assert missing == []
