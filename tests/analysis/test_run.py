"""analyze_run on a tiny run directory: summary keys, numbers against direct computations."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from analysis.fake_run import analyzed_fake_run
from segforget.analysis import (
    analyze_run,
    auroc,
    boundary_analysis,
    boundary_distance,
    spearman,
)
from segforget.dynamics import ForgettingStats

#: Summary sections computed from the run (the rest describe outputs: findings, figures, ...).
COMPUTED = (
    "overview",
    "per_class",
    "boundary",
    "margin",
    "timing",
    "regions",
    "data_map",
    "test_dynamics",
    "thickness",
    "volume",
    "k",
)


@pytest.fixture(scope="module")
def analyzed(tmp_path_factory):
    return analyzed_fake_run(tmp_path_factory)


def test_summary_has_every_key_and_files(analyzed):
    run, summary = analyzed
    for key in (*COMPUTED, "findings", "figures", "sections"):
        assert key in summary, key
    assert summary["boundary"]["enrichment_2px"] > 1.5
    on_disk = json.loads((run / "analysis" / "summary.json").read_text())
    assert on_disk == summary
    for fig in summary["figures"]:
        assert (run / "analysis" / fig["file"]).stat().st_size > 1000, fig
    assert (run / "analysis" / "correctness.gif").is_file()
    assert (run / "analysis" / "regions.csv").read_text().startswith("rank,view,section,pixels")
    assert len(json.loads((run / "analysis" / "regions.json").read_text())) >= 1
    assert summary["test_dynamics"]["test1_inline"]["auroc_switches_predict_error"] is not None
    assert any("class boundaries" in note for note in summary["findings"])


def _concat(run, view):
    st = ForgettingStats.load(run / "dynamics" / "epoch" / f"train_{view}")
    labels = np.load(run.parent / "data" / "train" / "train_labels.npy")
    labels = labels.transpose(0, 2, 1) if view == "inline" else labels.transpose(1, 2, 0)
    return st, labels.astype(np.int64)


def test_numbers_match_direct_whole_array_computation(analyzed):
    run, summary = analyzed
    events, obs, labels, aums = [], [], [], []
    for view in ("inline", "crossline"):
        st, lab = _concat(run, view)
        events.append(st.forgetting_events.ravel())
        obs.append(st.observations.ravel())
        labels.append(lab.ravel())
        direct = boundary_analysis(
            st.forgetting_events.reshape(lab.shape),
            st.observations.reshape(lab.shape),
            lab,
            class_names=summary["class_names"],
        )
        assert direct["enrichment_2px"] > 1
        aums.append(st.aum.ravel())
    ev, lab = np.concatenate(events), np.concatenate(labels)
    # frequently forgotten pixels by distance, summed over the views, counted directly
    k, frequent = summary["k"], np.zeros(4, dtype=np.int64)
    for view in ("inline", "crossline"):
        st, lab_view = _concat(run, view)
        distance = boundary_distance(lab_view, num_classes=len(summary["class_names"]))
        bins = np.minimum(np.rint(np.minimum(distance, 3)), 3).astype(np.int64).ravel()
        keep = (st.observations > 0) & (st.forgetting_events >= k) & (lab_view.ravel() < 255)
        frequent += np.bincount(bins[keep], minlength=4)
    assert summary["boundary"]["frequent"]["k"] == k
    assert summary["boundary"]["frequent"]["by_distance"] == frequent.tolist()
    # every pixel is sampled (fewer than max_samples), so the correlation is the full one
    assert summary["margin"]["spearman_events_vs_aum"] == pytest.approx(
        spearman(ev, np.concatenate(aums))
    )
    assert summary["overview"]["observed_pixels"] == ev.size
    assert summary["overview"]["mean_forgetting_events"] == pytest.approx(ev.mean())
    k = summary["k"]
    assert summary["overview"]["frequently_forgotten"] == pytest.approx((ev >= k).mean())
    for c, name in enumerate(summary["class_names"]):
        sel = lab == c
        if sel.any():
            assert summary["per_class"][name]["mean_forgetting_events"] == pytest.approx(
                ev[sel].mean()
            )
    # volume total = all events of both views
    assert summary["volume"]["total"] == int(ev.sum())
    assert summary["regions"]["pixels"] <= int((ev >= k).sum())


def test_test_dynamics_auroc_matches_rank_based_reference(analyzed):
    run, summary = analyzed
    st = ForgettingStats.load(run / "dynamics" / "epoch" / "test1_inline")
    labels = np.load(run.parent / "data" / "test_once" / "test1_labels.npy").transpose(0, 2, 1)
    pred = np.load(run / "predictions" / "test1_inline.npy")
    expected = auroc(st.switch_events, pred.ravel() != labels.ravel())
    got = summary["test_dynamics"]["test1_inline"]["auroc_switches_predict_error"]
    assert got == pytest.approx(expected)


def test_thickness_matches_a_direct_count_over_the_saved_predictions(analyzed):
    """Training bodies from the training labels, test pixels from every saved test prediction
    (test1, both views), each class split at its thickest training body."""
    from segforget.analysis import body_thickness

    run, summary = analyzed
    names = summary["class_names"]
    train = np.load(run.parent / "data" / "train" / "train_labels.npy").transpose(0, 2, 1)
    thick, _ = body_thickness(train.astype(np.int64))
    limits = [int(thick[train == k].max()) if (train == k).any() else 0 for k in range(6)]
    pixels, correct = np.zeros((2, 6), np.int64), np.zeros((2, 6), np.int64)
    volume = np.load(run.parent / "data" / "test_once" / "test1_labels.npy")
    for view, labels in (
        ("inline", volume.transpose(0, 2, 1)),
        ("crossline", volume.transpose(1, 2, 0)),
    ):
        labels = labels.astype(np.int64)
        pred = np.load(run / "predictions" / f"test1_{view}.npy")
        t, _ = body_thickness(labels)
        for k in range(6):
            sel = labels == k
            beyond = t > limits[k]
            for side, mask in ((0, sel & ~beyond), (1, sel & beyond)):
                pixels[side, k] += mask.sum()
                correct[side, k] += (mask & (pred == k)).sum()
    got = summary["thickness"]
    assert pixels.sum() == volume.size * 2
    for k, name in enumerate(names):
        assert got[name]["train_max_thickness"] == limits[k]
        for side, key in ((0, "within"), (1, "beyond")):
            assert got[name][key]["pixels"] == pixels[side, k]
            if pixels[side, k]:
                want = correct[side, k] / pixels[side, k]
                assert got[name][key]["accuracy"] == pytest.approx(want)


def test_gif_has_one_frame_per_epoch(analyzed):
    from PIL import Image

    from analysis.fake_run import EPOCHS

    run, _ = analyzed
    with Image.open(run / "analysis" / "correctness.gif") as gif:
        assert gif.n_frames == EPOCHS and gif.width >= 80


def test_chunk_size_does_not_change_summary(analyzed, tmp_path):
    run, summary = analyzed
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    other = analyze_run(copy, progress=False, chunk_pixels=10**7, figures=False, min_region_size=1)
    for key in COMPUTED:
        assert json.dumps(other[key]).replace(str(copy), "") == json.dumps(summary[key]).replace(
            str(run), ""
        ), key


def test_weight_average_run_says_what_was_tracked(analyzed, tmp_path):
    import yaml

    run, summary = analyzed
    assert summary["weight_average"] is None
    assert not any("weight average" in note for note in summary["findings"])
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    config = yaml.safe_load((copy / "config.yaml").read_text())
    config["train"] = {"ema": 0.9}
    (copy / "config.yaml").write_text(yaml.safe_dump(config))
    other = analyze_run(copy, progress=False, figures=False, min_region_size=1)
    assert other["weight_average"] == 0.9
    assert any("weight average (train.ema = 0.9)" in note for note in other["findings"])


def test_user_errors(tmp_path, analyzed):
    run, _ = analyzed
    with pytest.raises(FileNotFoundError, match="Expected `run_dir` to be an existing run"):
        analyze_run(tmp_path / "nope", progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="Expected `run_dir` to be a run directory"):
        analyze_run(tmp_path / "empty", progress=False)
    broken = tmp_path / "broken"
    shutil.copytree(run, broken)
    shutil.rmtree(broken / "analysis")
    for path in (broken / "dynamics" / "epoch" / "train_inline").rglob("c/*"):
        if path.is_file():
            path.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="damaged"):
        analyze_run(broken, progress=False)
    assert not (broken / "analysis").exists()  # nothing written on error
    with pytest.raises(ValueError, match="Expected `k`"):
        analyze_run(run, progress=False, k=0)
    nodyn = tmp_path / "nodyn"
    nodyn.mkdir()
    (nodyn / "config.yaml").write_text("data: {spec: x}\n")
    (nodyn / "metrics.json").write_text("{}")
    with pytest.raises(ValueError, match="tracker statistics"):
        analyze_run(nodyn, progress=False)
    (nodyn / "config.yaml").write_text("data: [unclosed\n")
    with pytest.raises(ValueError, match="config.yaml to be readable"):
        analyze_run(nodyn, progress=False)


def test_findings_say_where_the_frequently_forgotten_pixels_lie(analyzed):
    from segforget.analysis.run import _frequent_boundary_findings

    _, summary = analyzed
    frequent = summary["boundary"]["frequent"]
    assert frequent["pixels"] > 0  # the fake run has frequently forgotten pixels
    assert any("frequently forgotten pixels (>= " in note for note in summary["findings"])
    on_boundary = {
        "k": 2,
        "pixels": 100,
        "by_distance": [80, 12, 3, 5],
        "pixels_by_distance": [70, 90, 60, 780],
        "on_boundary_share": 0.8,
        "within_1px_share": 0.92,
        "boundary_rate": 80 / 70,
    }
    (note,) = _frequent_boundary_findings(on_boundary)
    assert note.startswith("Of the 100 frequently forgotten pixels (>= 2 events), 80% are")
    assert "(which make up 7.0% of all pixels) and 92% lie within 1 px" in note
    assert "moving by a pixel" in note and "(5 of these pixels lie 3 px or more" in note
    inside = dict(on_boundary, by_distance=[20, 10, 10, 60], on_boundary_share=0.2)
    inside["within_1px_share"] = 0.3
    (note,) = _frequent_boundary_findings(inside)
    assert "20% are label-boundary pixels" in note and "inside the labelled regions" in note
    assert _frequent_boundary_findings(None) == []
    assert _frequent_boundary_findings(dict(on_boundary, pixels=0)) == []


def test_browser_sections_read_each_section_once(analyzed, tmp_path, monkeypatch):
    from collections import Counter

    import segforget.analysis.run as run_module

    run, _ = analyzed
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    shutil.rmtree(copy / "analysis")
    reads: Counter = Counter()
    original = run_module._section_arrays

    def counting(reader, space, section):
        reads[(space.ref.view, section)] += 1
        return original(reader, space, section)

    monkeypatch.setattr(run_module, "_section_arrays", counting)
    summary = analyze_run(copy, progress=False, top_sections=0, min_region_size=1)
    shown = Counter((entry["view"], entry["section"]) for entry in summary["sections"])
    assert shown and reads == shown


def test_each_store_is_verified_while_it_is_read(tmp_path, analyzed, monkeypatch):
    """No store is read twice to check it: the checksums are computed over the ranges the
    first pass loads anyway; a silent change in the last pixel still stops the analysis."""
    import zarr

    run, summary = analyzed
    calls = []
    real_verify = ForgettingStats.verify.__func__
    monkeypatch.setattr(
        ForgettingStats,
        "verify",
        classmethod(lambda cls, path, **kw: calls.append(path) or real_verify(cls, path, **kw)),
    )
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    shutil.rmtree(copy / "analysis")
    options = dict(progress=False, figures=False, chunk_pixels=2000, min_region_size=1)
    again = analyze_run(copy, top_sections=1, browser_sections=4, **options)
    assert calls == []
    for key in ("overview", "per_class", "regions", "test_dynamics", "volume"):
        assert again[key] == summary[key], key
    for store in sorted((copy / "dynamics" / "epoch").iterdir()):
        shutil.rmtree(copy / "analysis", ignore_errors=True)
        arrays = ForgettingStats.load(store)
        changed = arrays.switch_events.copy()
        changed[-1] += 1  # the last pixel: seen only when the store has been read to the end
        shutil.rmtree(store / "switch_events")
        group = zarr.open_group(store, mode="a")
        group.create_array("switch_events", data=changed, config={"write_empty_chunks": True})
        with pytest.raises(ValueError, match="checksum mismatch in 'switch_events'"):
            analyze_run(copy, **options)
        assert not (copy / "analysis").exists()  # nothing written
        shutil.rmtree(store / "switch_events")
        group.create_array(
            "switch_events", data=arrays.switch_events, config={"write_empty_chunks": True}
        )
