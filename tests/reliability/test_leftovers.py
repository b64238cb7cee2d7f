"""Temporaries left by a killed writer are invisible to every reader of a run directory."""

from __future__ import annotations

import shutil

import numpy as np
from reliability_builders import stores

from helpers import run_cli
from segforget.io import is_temporary
from segforget.train import load_run


def _leave_temporaries(run):
    """What SIGKILL during each kind of write leaves behind (names as segforget.io makes them)."""
    store = stores(run)[0]
    shutil.copytree(store, store.with_name(f".{store.name}.k3j2h1.tmp"))
    shutil.copytree(store, store.with_name(f".{store.name}.old-4242"))
    name = sorted((run / "predictions").glob("*.npy"))[0]
    np.save(name.with_name(f".{name.stem}.a1b2c3.tmp.npy"), np.zeros(3, np.uint8))
    (run / "checkpoints" / ".last.x9y8.tmp.pt").write_bytes(b"half")
    (run / ".metrics.q1w2.tmp.json").write_text("{")
    leftovers = [p for p in run.rglob("*") if is_temporary(p)]
    assert len(leftovers) == 5
    return leftovers


def test_run_readers_skip_temporaries(finished_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    before = load_run(run)
    # Run lists the directory on each call: keep the lists from before.
    stats, predictions = before.available_stats(), before.available_predictions()
    _leave_temporaries(run)
    after = load_run(run)
    assert after.available_stats() == stats
    assert after.available_predictions() == predictions
    assert after.metrics == before.metrics


def test_analyze_works_beside_temporaries(finished_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    _leave_temporaries(run)
    result = run_cli(["analyze", run, "--no-figures", "--quiet"])
    assert result.code == 0, result.stderr
    summary = (run / "analysis" / "summary.json").read_text()
    assert ".tmp" not in summary and ".old-" not in summary
