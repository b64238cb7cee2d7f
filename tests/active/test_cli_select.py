"""End to end on a real tiny run: select, label-issues and al-sim, checked against references."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
import torch

from helpers import assert_user_error, run_cli
from segforget.analysis.active_learning import (
    entropy_section_scores,
    load_final_model,
    margin_section_scores,
    section_uncertainty,
    select_from_run,
    simulate_active_learning,
)
from segforget.analysis.label_issues import (
    label_issue_scores,
    label_issues_from_run,
    open_scores,
    section_issue_scores,
)
from segforget.train import load_run

PNG = b"\x89PNG"


def read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def reference_switch_scores(run, strategy="switch"):
    """(split, view, section) -> mean value over observed pixels, by explicit loops."""
    out = {}
    for mode, split, view in run.available_stats():
        if split == "train":
            continue
        stats = run.stats(mode, split, view)
        n = stats.meta["num_sections"]
        h, w = stats.meta["section_shape"]
        value = stats.forgetting_score if strategy == "forgetting" else stats.switch_events
        for s in range(n):
            chunk = slice(s * h * w, (s + 1) * h * w)
            seen = stats.observations[chunk] > 0
            if seen.any():
                out[(split, view, s)] = float(value[chunk][seen].mean())
    return out


@pytest.mark.parametrize("strategy", ["switch", "forgetting"])
def test_select_cli_matches_reference_ranking(tiny_run, tmp_path, strategy):
    out = tmp_path / "sel.csv"
    result = run_cli(["select", tiny_run, "--strategy", strategy, "--n", 5, "--out", out])
    assert result.code == 0, result.stderr
    rows = read_csv(out)
    reference = reference_switch_scores(load_run(tiny_run), strategy)
    expected = sorted(reference.items(), key=lambda kv: -kv[1])[:5]
    assert len(rows) == 5
    assert [float(r["score"]) for r in rows] == pytest.approx([v for _, v in expected])
    for row in rows:
        key = (row["split"], row["view"], int(row["section"]))
        assert float(row["score"]) == pytest.approx(reference[key])
    assert out.with_suffix(".png").read_bytes()[:4] == PNG


def test_select_cli_spacing_keeps_chosen_sections_apart(tiny_run, tmp_path):
    out = tmp_path / "spaced.csv"
    args = ["select", tiny_run, "--strategy", "switch", "--n", 4, "--spacing", 3, "--out", out]
    result = run_cli(args)
    assert result.code == 0, result.stderr
    rows = read_csv(out)
    reference = reference_switch_scores(load_run(tiny_run))
    ranked = [key for key, _ in sorted(reference.items(), key=lambda kv: -kv[1])]
    # By hand: walk the ranking, skip a section within 2 of a chosen one of its split and view.
    chosen = []
    for key in ranked:
        if len(chosen) == 4:
            break
        if all(k[:2] != key[:2] or abs(k[2] - key[2]) >= 3 for k in chosen):
            chosen.append(key)
    assert len(chosen) == 4  # the tiny run has enough far-apart sections
    assert [(r["split"], r["view"], int(r["section"])) for r in rows] == chosen
    assert_user_error(
        run_cli(["select", tiny_run, "--spacing", -1, "--out", tmp_path / "bad.csv"]),
        "Expected `--spacing` to be an integer >= 0",
    )


def test_select_cli_says_when_the_pool_is_smaller_than_n(tiny_run, tmp_path):
    out = tmp_path / "all.csv"
    result = run_cli(["select", tiny_run, "--n", 100000, "--out", out])
    assert result.code == 0, result.stderr
    rows = read_csv(out)
    assert f"the pool holds only {len(rows)} to choose from" in result.stdout
    assert len(rows) == len(reference_switch_scores(load_run(tiny_run)))


def test_select_cli_default_names_keep_sections_and_windows_apart(tiny_run, tmp_path):
    """Without --out, a window selection gets its own file: it never collides with (or needs
    --force over) the section selection of the same strategy and pool."""
    run_dir = tmp_path / "run"
    shutil.copytree(tiny_run, run_dir)
    assert run_cli(["select", run_dir, "--n", 2]).code == 0
    result = run_cli(["select", run_dir, "--n", 2, "--patch", "8,6"])
    assert result.code == 0, result.stderr
    sections = read_csv(run_dir / "select" / "switch_test.csv")
    windows = read_csv(run_dir / "select" / "switch_test_8x6.csv")
    assert "row" not in sections[0] and "row" in windows[0] and len(windows) == 2
    assert (run_dir / "select" / "switch_test_8x6.png").read_bytes()[:4] == PNG
    assert_user_error(
        run_cli(["select", run_dir, "--n", 2, "--patch", "8,6"]), "pass --force to replace it"
    )


def test_select_cli_patches_match_window_means(tiny_run, tmp_path):
    """--patch ranks windows by the mean switch count of their observed pixels (by loops)."""
    out = tmp_path / "patches.csv"
    args = ["select", tiny_run, "--strategy", "switch", "--n", 6, "--patch", "8,6", "--out", out]
    result = run_cli(args)
    assert result.code == 0, result.stderr
    rows = read_csv(out)
    run = load_run(tiny_run)
    reference = {}
    for mode, split, view in run.available_stats():
        if split == "train":
            continue
        stats = run.stats(mode, split, view)
        h, w = stats.meta["section_shape"]
        switches = np.asarray(stats.switch_events).reshape(-1, h, w)
        seen = np.asarray(stats.observations).reshape(-1, h, w) > 0
        for section in range(len(switches)):
            for row in range(0, h, 8):
                for col in range(0, w, 6):
                    window = np.s_[section, row : row + 8, col : col + 6]
                    if seen[window].any():
                        value = switches[window][seen[window]].mean()
                        reference[(split, view, section, row, col)] = float(value)
    expected = sorted(reference.values(), reverse=True)[:6]
    assert [float(r["score"]) for r in rows] == pytest.approx(expected)
    for r in rows:
        key = (r["split"], r["view"], int(r["section"]), int(r["row"]), int(r["col"]))
        assert float(r["score"]) == pytest.approx(reference[key])
        assert int(r["height"]) <= 8 and int(r["width"]) <= 6
    assert "rows " in result.stdout and out.with_suffix(".png").read_bytes()[:4] == PNG
    for bad in ("0,4", "a", "1,2,3"):
        assert_user_error(
            run_cli(["select", tiny_run, "--patch", bad, "--out", tmp_path / "bad.csv"]),
            "Expected `--patch` to be 'H,W' or one size",
        )


def test_entropy_patches_use_the_final_models_pixels(tiny_run):
    run = load_run(tiny_run)
    rows = select_from_run(run, strategy="entropy", n=4, pool="test1", patch=(5, 5))
    model = load_final_model(run)
    data = run.load_data()
    images = torch.stack([item["image"] for item in data.dataset("test1", "inline")])
    with torch.no_grad():
        p = torch.softmax(model(images).double(), dim=1).numpy()
    entropy = -(p * np.log(np.clip(p, 1e-12, None))).sum(axis=1)  # (N, H, W)
    for r in rows:
        window = entropy[r["section"], r["row"] : r["row"] + 5, r["col"] : r["col"] + 5]
        assert r["score"] == pytest.approx(window.mean())
    scores = [r["score"] for r in rows]
    assert scores == sorted(scores, reverse=True)
    # spacing with patches keeps the same window of nearby sections apart
    spaced = select_from_run(run, strategy="entropy", n=4, pool="test1", patch=(5, 5), spacing=2)
    for a in spaced:
        for b in spaced:
            if a is not b and (a["row"], a["col"]) == (b["row"], b["col"]):
                assert abs(a["section"] - b["section"]) >= 2


def test_select_gauss_and_random_reproducible(tiny_run):
    run = load_run(tiny_run)
    for strategy in ("gauss", "random"):
        a = select_from_run(run, strategy=strategy, n=4, seed=3)
        b = select_from_run(run, strategy=strategy, n=4, seed=3)
        assert a == b and len({(r["split"], r["section"]) for r in a}) == 4


def test_entropy_and_margin_use_the_final_model(tiny_run):
    run = load_run(tiny_run)
    rows = select_from_run(run, strategy="entropy", n=3, pool="test1")
    model = load_final_model(run)
    data = run.load_data()
    images = torch.stack([item["image"] for item in data.dataset("test1", "inline")])
    with torch.no_grad():
        probabilities = torch.softmax(model(images).double(), dim=1).numpy()
    entropy = entropy_section_scores(probabilities)
    top = np.argsort(-entropy, kind="stable")[:3]
    assert [r["section"] for r in rows] == top.tolist()
    assert [r["score"] for r in rows] == pytest.approx(entropy[top].tolist())
    got = section_uncertainty(model, data.dataset("test1", "inline"), batch_size=3)
    assert got["margin"] == pytest.approx(margin_section_scores(probabilities))


def test_switch_entropy_ranks_by_the_mean_rank_of_both_scores(tiny_run, tmp_path):
    """switch-entropy = mean of the rank fractions of the switch score (tracked pixels, by
    loops) and the entropy score (the final model's softmax) over the whole pool."""
    from scipy.stats import rankdata

    out = tmp_path / "se.csv"
    result = run_cli(["select", tiny_run, "--strategy", "switch-entropy", "--n", 6, "--out", out])
    assert result.code == 0, result.stderr
    rows = read_csv(out)
    run = load_run(tiny_run)
    switch = reference_switch_scores(run)
    model, data = load_final_model(run), run.load_data()
    entropy = {}
    for split, view in {(s, v) for (s, v, _) in switch}:
        images = torch.stack([item["image"] for item in data.dataset(split, view)])
        with torch.no_grad():
            p = torch.softmax(model(images).double(), dim=1).numpy()
        for section, value in enumerate(entropy_section_scores(p)):
            entropy[(split, view, section)] = value
    keys = sorted(switch)
    s_rank = rankdata([switch[k] for k in keys]) / len(keys)
    e_rank = rankdata([entropy[k] for k in keys]) / len(keys)
    reference = {k: (a + b) / 2 for k, a, b in zip(keys, s_rank, e_rank)}
    expected = sorted(reference.values(), reverse=True)[:6]
    assert [float(r["score"]) for r in rows] == pytest.approx(expected)
    for r in rows:
        assert float(r["score"]) == pytest.approx(
            reference[(r["split"], r["view"], int(r["section"]))]
        )


def test_select_user_errors_write_nothing(tiny_run, tmp_path):
    out = tmp_path / "x.csv"
    assert_user_error(
        run_cli(["select", tiny_run, "--strategy", "bald", "--out", out]),
        "Expected `--strategy` to be one of switch, gauss",
    )
    assert_user_error(run_cli(["select", tiny_run, "--n", 0, "--out", out]), "Expected `--n`")
    assert_user_error(
        run_cli(["select", tmp_path / "nope", "--out", out]), "Expected `RUN` to be a run directory"
    )
    assert_user_error(
        run_cli(["select", tiny_run, "--pool", "test9", "--out", out]),
        "Expected `pool` to be 'test' or a split tracked",
        "track.test=true",
    )
    assert_user_error(
        run_cli(["select", tiny_run, "--out", tmp_path / "x.txt"]),
        "Expected `--out` to end in .csv",
    )
    assert not out.exists() and not out.with_suffix(".png").exists()
    out.write_text("keep")
    assert_user_error(run_cli(["select", tiny_run, "--out", out]), "--force")
    assert out.read_text() == "keep"


def test_label_issues_cli_matches_scores(tiny_run, tmp_path):
    out = tmp_path / "issues"
    result = run_cli(["label-issues", tiny_run, "--out", out, "--top-pixels", 50])
    assert result.code == 0, result.stderr
    run = load_run(tiny_run)
    stats = run.stats("epoch", "train", "inline")
    h, w = stats.meta["section_shape"]
    scores = open_scores(label_issue_scores(stats), (h, w), radius=1)  # the default opening
    per_section = section_issue_scores(scores, num_sections=stats.meta["num_sections"])
    sections = read_csv(out / "sections.csv")
    for row in sections:
        assert float(row["score"]) == pytest.approx(per_section[int(row["section"])])
    assert [float(r["score"]) for r in sections] == sorted(
        (float(r["score"]) for r in sections), reverse=True
    )
    pixels = read_csv(out / "pixels.csv")
    assert len(pixels) == 50
    for row in pixels[:10]:
        index = int(row["section"]) * h * w + int(row["h"]) * w + int(row["w"])
        assert float(row["score"]) == pytest.approx(scores[index])
    assert float(pixels[0]["score"]) == pytest.approx(np.nanmax(scores))
    assert (out / "issues.png").read_bytes()[:4] == PNG
    summary = json.loads((out / "summary.json").read_text())
    assert summary["observed_pixels"] == int(np.isfinite(scores).sum())
    raw = run_cli(["label-issues", tiny_run, "--out", tmp_path / "raw", "--opening", 0])
    assert raw.code == 0, raw.stderr
    top = read_csv(tmp_path / "raw" / "pixels.csv")[0]
    assert float(top["score"]) == pytest.approx(np.nanmax(label_issue_scores(stats)))


def test_label_issues_library_and_errors(tiny_run, tmp_path):
    result = label_issues_from_run(tiny_run, method="aum", fraction=0.1)
    flagged = result["flagged"]["inline"]
    assert flagged.sum() == np.ceil(0.1 * np.isfinite(result["scores"]["inline"]).sum())
    assert_user_error(
        run_cli(["label-issues", tiny_run, "--method", "loss"]), "Expected `--method` to be one of"
    )
    assert_user_error(run_cli(["label-issues", tiny_run, "--fraction", 2]), "Expected `--fraction`")
    assert_user_error(
        run_cli(["label-issues", tiny_run, "--opening", -1]), "Expected `--opening` to be >= 0"
    )
    with pytest.raises(ValueError, match="Expected the run to hold training statistics"):
        label_issues_from_run(tiny_run, mode="presentation")


def test_al_sim_cli_tiny(tiny_f3, tmp_path):
    out = tmp_path / "al"
    args = ["al-sim", "--data", f"f3:{tiny_f3}", "--strategies", "switch,random", "--rounds", 1]
    args += ["--budget", 2, "--seeds", "0", "--epochs", 2, "--steps", 2, "--out", out]
    result = run_cli([*args, "--random-draws", 2])
    assert result.code == 0, result.stderr
    curves = json.loads((out / "curves.json").read_text())
    assert set(curves["curves"]) == {"switch", "random"}
    assert curves["config"]["random_draws"] == 2
    assert "random: the mean of 2 independent draws per seed" in result.stdout
    assert np.asarray(curves["curves"]["random"]["miou_draws"]).shape == (1, 2, 2)
    for curve in curves["curves"].values():
        assert curve["labeled"] == [2, 4]
        assert curve["miou_std"] == [0.0, 0.0]  # one seed
        assert all(0.0 <= m <= 1.0 for m in curve["miou_mean"])
        assert curve["miou_mean"] == pytest.approx(np.mean(curve["miou"], axis=0).tolist())
    # Same seed, same initial set and initialization: round 0 is identical across strategies.
    assert curves["curves"]["switch"]["miou"][0][0] == curves["curves"]["random"]["miou"][0][0]
    paired = curves["paired"]["switch"]["random"]
    diff = np.subtract(curves["curves"]["switch"]["miou"], curves["curves"]["random"]["miou"])
    assert paired["mean"] == pytest.approx(diff.mean(axis=0).tolist())
    assert paired["wins"] == (diff > 0).sum(axis=0).tolist() and paired["seeds"] == 1
    assert curves["paired"]["random"] == {}
    assert "switch - random" in result.stdout
    assert (out / "curves.png").read_bytes()[:4] == PNG
    assert curves["config"]["spacing"] == 0


def test_al_sim_spacing_keeps_acquired_sections_apart(tiny_f3):
    """Every acquisition of a spaced al-sim is at least `spacing` sections from the others
    and from the labeled ones (the pool allows it here)."""
    import segforget.analysis.active_learning as al
    from segforget.data import load_data

    data = load_data(f"f3:{tiny_f3}")
    picks = []
    original = al._acquire

    def spy(units, strategy, data, view, pool, budget, **kw):
        chosen = original(units, strategy, data, view, pool, budget, **kw)
        picks.append((strategy, kw["labeled"].copy(), chosen))
        return chosen

    al._acquire = spy
    try:
        result = simulate_active_learning(
            data,
            strategies=["switch", "entropy", "random"],
            rounds=1,
            budget=2,
            seeds=[0, 1],
            epochs=2,
            steps_per_epoch=1,
            spacing=2,
        )
    finally:
        al._acquire = original
    # 10 training inlines, 2 labeled + 2 chosen: two far-apart free sections always exist.
    assert result["config"]["spacing"] == 2 and len(picks) == 6
    for _, labeled, chosen in picks:
        assert not set(chosen.tolist()) & set(labeled.tolist())
        everything = np.sort(np.concatenate([labeled, chosen]))
        assert np.diff(everything).min() >= 1
        for section in chosen:
            others = np.setdiff1d(everything, [section])
            assert np.abs(others - section).min() >= 2
    with pytest.raises(ValueError, match="Expected `spacing` to be an integer >= 0"):
        simulate_active_learning(
            data, strategies=["random"], rounds=1, budget=1, seeds=[0], spacing=-1
        )


def test_paired_differences_by_hand():
    from segforget.analysis.active_learning import paired_differences

    miou = [[0.5, 0.6, 0.7], [0.4, 0.5, 0.9], [0.6, 0.6, 0.6]]
    reference = [[0.5, 0.5, 0.8], [0.4, 0.6, 0.7], [0.6, 0.5, 0.7]]
    got = paired_differences(miou, reference)
    # differences: [0, .1, -.1], [0, -.1, .2], [0, .1, -.1]
    assert got["mean"] == pytest.approx([0.0, 0.1 / 3, 0.0])
    assert got["std"] == pytest.approx(
        [
            0.0,
            np.sqrt((2 * (0.2 / 3) ** 2 + (0.4 / 3) ** 2) / 2),
            np.sqrt((2 * 0.1**2 + 0.2**2) / 2),
        ]
    )
    assert got["wins"] == [0, 2, 1] and got["seeds"] == 3
    with pytest.raises(ValueError, match="same shape"):
        paired_differences(miou, reference[:2])


def test_al_sim_random_draws_average_independent_chains(tiny_f3):
    """random_draws=3: random's curve of a seed is the mean of three chains; chain 0 is the
    single-draw chain, chain d > 0 takes the top scores of its own stream [seed, d]."""
    import segforget.analysis.active_learning as al
    from segforget.data import load_data

    data = load_data(f"f3:{tiny_f3}")
    picks = []
    original = al._acquire

    def spy(units, strategy, data, view, pool, budget, **kw):
        chosen = original(units, strategy, data, view, pool, budget, **kw)
        picks.append((kw["seed"], kw["draw"], pool.copy(), chosen))
        return chosen

    settings = dict(strategies=["random"], rounds=2, budget=2, seeds=[0, 1], epochs=1)
    single = simulate_active_learning(data, steps_per_epoch=1, **settings)
    al._acquire = spy
    try:
        three = simulate_active_learning(data, steps_per_epoch=1, random_draws=3, **settings)
    finally:
        al._acquire = original
    curve = three["curves"]["random"]
    draws = np.asarray(curve["miou_draws"])  # (seeds, draws, rounds + 1)
    assert draws.shape == (2, 3, 3) and curve["draws"] == 3
    assert three["config"]["random_draws"] == 3
    assert np.array_equal(draws[:, 0], np.asarray(single["curves"]["random"]["miou"]))
    assert np.allclose(curve["miou"], draws.mean(axis=1), rtol=0, atol=1e-15)
    assert np.allclose(curve["miou_mean"], draws.mean(axis=1).mean(axis=0))
    assert (draws[:, :, 0] == draws[:, :1, 0]).all()  # every chain starts from the same model
    assert len(picks) == 2 * 3 * 2
    for seed, draw, pool, chosen in picks:
        stream = seed if draw == 0 else [seed, draw]
        expected = np.argsort(-np.random.default_rng(stream).random(pool.size), kind="stable")[:2]
        assert sorted(chosen.tolist()) == sorted(pool[expected].tolist())
    firsts = {(seed, draw): tuple(chosen) for seed, draw, _, chosen in picks if seed % 1000 == 0}
    assert len({firsts[(0, d)] for d in range(3)}) > 1  # the chains do differ
    with pytest.raises(ValueError, match="Expected `random_draws` to be an integer >= 1"):
        simulate_active_learning(data, steps_per_epoch=1, random_draws=0, **settings)


def test_al_sim_user_errors(tiny_f3, tmp_path):
    out = tmp_path / "al"
    base = ["al-sim", "--data", f"f3:{tiny_f3}", "--out", out]
    assert_user_error(
        run_cli([*base, "--strategies", "switch,bald"]), "Expected `--strategies` to hold"
    )
    assert_user_error(run_cli([*base, "--rounds", 0]), "Expected `--rounds`")
    assert_user_error(run_cli([*base, "--seeds", "a,b"]), "Expected `--seeds`")
    assert_user_error(
        run_cli([*base, "--rounds", 5, "--budget", 4]), "Expected initial + rounds * budget"
    )
    assert_user_error(
        run_cli([*base, "--epochs", 4, "--track-warmup", 3]), "Expected `--track-warmup` in [0, "
    )
    assert_user_error(
        run_cli([*base, "--steps", 2, "--pool-passes", 3]), "Expected `--pool-passes` in [1, "
    )
    assert_user_error(run_cli([*base, "--random-draws", 0]), "Expected `--random-draws`")
    assert not out.exists()


def test_al_sim_pool_observed_only_after_the_warmup(tiny_f3):
    """Tracked rounds observe the pool once per epoch past ``track_warmup``; labeled sections
    are never observed; the default warm-up is a third of the epochs."""
    from segforget.analysis.active_learning import (
        RoundTraining,
        _train_on_sections,
        default_track_warmup,
    )
    from segforget.data import load_data

    assert [default_track_warmup(e) for e in (1, 2, 3, 6, 10)] == [0, 0, 1, 2, 3]
    data = load_data(f"f3:{tiny_f3}")
    view = data.views[0]
    labeled, pool = np.array([0, 1]), np.arange(2, 10)
    space = data.space("train", view)
    for warmup in (0, 1):
        settings = RoundTraining(epochs=3, steps_per_epoch=1, batch_size=2, track_warmup=warmup)
        _, stats = _train_on_sections(
            data, view, labeled, pool, track=True, seed=0, settings=settings
        )
        observations = np.asarray(stats.observations).reshape(space.num_sections, -1)
        assert (observations[pool] == 3 - warmup).all()
        assert (observations[labeled] == 0).all()
    with pytest.raises(ValueError, match="Expected `track_warmup` to be an integer in"):
        simulate_active_learning(
            data, strategies=["switch"], rounds=1, budget=1, seeds=[0], epochs=3, track_warmup=2
        )


def test_pool_pass_steps_by_hand():
    from segforget.analysis.active_learning import pool_pass_steps

    assert pool_pass_steps(20, 1) == {20}
    assert pool_pass_steps(20, 4) == {5, 10, 15, 20}
    assert pool_pass_steps(10, 3) == {3, 7, 10}  # round(3.33), round(6.67), 10
    assert pool_pass_steps(3, 3) == {1, 2, 3}
    for passes in (0, 4):
        with pytest.raises(ValueError, match=r"Expected `pool_passes` to be an integer in \[1, "):
            pool_pass_steps(3, passes)


def test_al_sim_pool_passes_multiply_the_observations_not_the_training(tiny_f3):
    """Two pool passes per tracked epoch observe every pool pixel twice as often; the trained
    model is the same (a pass changes no weight and draws no random number)."""
    import torch

    from segforget.analysis.active_learning import RoundTraining, _train_on_sections
    from segforget.data import load_data

    data = load_data(f"f3:{tiny_f3}")
    view = data.views[0]
    labeled, pool = np.array([0, 1]), np.arange(2, 10)
    space = data.space("train", view)
    models, observations = [], []
    for passes in (1, 2):
        settings = RoundTraining(
            epochs=3, steps_per_epoch=2, batch_size=2, track_warmup=1, pool_passes=passes
        )
        model, stats = _train_on_sections(
            data, view, labeled, pool, track=True, seed=0, settings=settings
        )
        models.append(model)
        observations.append(np.asarray(stats.observations).reshape(space.num_sections, -1))
    assert (observations[0][pool] == 2).all() and (observations[1][pool] == 4).all()
    assert (observations[1][labeled] == 0).all()
    for a, b in zip(models[0].state_dict().values(), models[1].state_dict().values()):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="Expected `pool_passes` to be an integer in"):
        simulate_active_learning(
            data, strategies=["switch"], rounds=1, budget=1, seeds=[0], epochs=3, pool_passes=11
        )


def test_test_sections_observed_after_the_warmup(tiny_run):
    """track.test_warmup=1 in a 3-epoch run: training pixels observed 3 times, test pixels 2."""
    run = load_run(tiny_run)
    train_obs = np.asarray(run.stats("epoch", "train", "inline").observations)
    assert train_obs.max() == 3
    for split in ("test1", "test2"):
        stats = run.stats("epoch", split, "inline")
        observations = np.asarray(stats.observations)
        assert observations.max() == 2 and (observations > 0).mean() > 0.9
        assert stats.meta["warmup_epochs"] == 1 and stats.meta["epochs"] == 3


def test_al_sim_windows_train_only_on_labeled_windows(tiny_f3, tmp_path):
    """--patch: units are windows; a partly labeled section trains with the other pixels
    ignored; acquisitions are unlabeled windows; the curve counts windows."""
    import segforget.analysis.active_learning as al
    from segforget.data import load_data

    data = load_data(f"f3:{tiny_f3}")
    h, w = data.space("train", data.views[0]).section_shape
    units = al._WindowUnits(np.arange(10), (h, w), (8, 8))
    assert (
        units.per_section == len(al.patch_grid(h, w, (8, 8)))
        and units.count == 10 * units.per_section
    )
    labeled = np.array([0, units.per_section + 1])  # window 0 of section 0, window 1 of section 1
    sections, tracked, masks = units.training(labeled, np.setdiff1d(units.all, labeled))
    assert sections.tolist() == [0, 1] and tracked.tolist() == list(range(10))
    r, c, ph, pw = al.patch_grid(h, w, (8, 8))[1]
    expected = np.zeros((h, w), bool)
    expected[r : r + ph, c : c + pw] = True
    assert np.array_equal(masks[1], expected) and masks[0].sum() == 8 * min(8, w)
    # The masked labels, after the flip transform, are exactly the labeled window (flipped).
    from segforget.data.transforms import HorizontalFlip

    flip = HorizontalFlip(p=1.0)
    item = data.dataset("train", data.views[0], sections=[1])[0]
    out = al._MaskThenFlip(masks, flip, 255)(item)
    kept = out["label"].numpy() != 255
    assert np.array_equal(kept, expected[:, ::-1])
    assert np.array_equal(out["label"].numpy()[kept], item["label"].numpy()[:, ::-1][kept])

    out_dir = tmp_path / "alw"
    args = ["al-sim", "--data", f"f3:{tiny_f3}", "--strategies", "switch,entropy,random"]
    args += ["--rounds", 1, "--budget", 3, "--initial", 4, "--seeds", "0", "--epochs", 2]
    args += ["--steps", 1, "--patch", "8", "--out", out_dir]
    result = run_cli(args)
    assert result.code == 0, result.stderr
    curves = json.loads((out_dir / "curves.json").read_text())
    assert curves["config"]["patch"] == [8, 8]
    assert curves["curves"]["switch"]["labeled"] == [4, 7]
    assert "(labeled 8x8 windows)" in result.stdout
    assert_user_error(
        run_cli([*args[:-4], "--patch", "0", "--out", tmp_path / "bad"]),
        "Expected `--patch` to be 'H,W' or one size",
    )


def test_window_acquisition_scores_match_window_means(tiny_f3):
    """A switch acquisition picks the unlabeled windows with the highest mean switch count."""
    import segforget.analysis.active_learning as al
    from segforget.data import load_data

    data = load_data(f"f3:{tiny_f3}")
    view = data.views[0]
    h, w = data.space("train", view).section_shape
    units = al._WindowUnits(np.arange(10), (h, w), (6, 5))
    labeled = np.array([0, 3, 7])
    pool = np.setdiff1d(units.all, labeled)
    sections, tracked, masks = units.training(labeled, pool)
    settings = al.RoundTraining(epochs=3, steps_per_epoch=1, batch_size=2, track_warmup=0)
    model, stats = al._train_on_sections(
        data, view, sections, tracked, track=True, seed=0, settings=settings, label_masks=masks
    )
    chosen = al._acquire(
        units, "switch", data, view, pool, 4, model=model, stats=stats, seed=0, device="cpu"
    )
    switches = np.asarray(stats.switch_events).reshape(-1, h, w)
    seen = np.asarray(stats.observations).reshape(-1, h, w) > 0
    reference = {}
    for unit in pool.tolist():
        section, t = divmod(unit, units.per_section)
        r, c, ph, pw = units.windows[t]
        window = np.s_[section, r : r + ph, c : c + pw]
        if seen[window].any():
            reference[unit] = switches[window][seen[window]].mean()
    best = sorted(reference, key=lambda u: (-reference[u], u))[:4]
    assert chosen.tolist() == best


def test_switch_entropy_acquisition_combines_the_ranks(tiny_f3):
    """al-sim's switch-entropy picks the pool sections with the highest mean rank fraction of
    their tracked switch mean and the round model's entropy (both computed here by hand)."""
    from scipy.stats import rankdata

    import segforget.analysis.active_learning as al
    from segforget.data import load_data

    data = load_data(f"f3:{tiny_f3}")
    view = data.views[0]
    h, w = data.space("train", view).section_shape
    sections = np.asarray(data.sections("train", view))
    units = al._SectionUnits(sections)
    labeled = sections[:2]
    pool = np.setdiff1d(sections, labeled)
    settings = al.RoundTraining(epochs=3, steps_per_epoch=1, batch_size=2, track_warmup=0)
    model, stats = al._train_on_sections(
        data, view, labeled, pool, track=True, seed=0, settings=settings
    )
    chosen = al._acquire(
        units, "switch-entropy", data, view, pool, 3, model=model, stats=stats, seed=0, device="cpu"
    )
    switches = np.asarray(stats.switch_events).reshape(-1, h, w)
    seen = np.asarray(stats.observations).reshape(-1, h, w) > 0
    switch = [switches[s][seen[s]].mean() for s in pool]
    images = torch.stack(
        [data.dataset("train", view, sections=pool)[i]["image"] for i in range(pool.size)]
    )
    with torch.no_grad():
        p = torch.softmax(model(images).double(), dim=1).numpy()
    entropy = entropy_section_scores(p)
    combined = (rankdata(switch) + rankdata(entropy)) / (2 * pool.size)
    best = sorted(range(pool.size), key=lambda i: (-combined[i], i))[:3]
    assert chosen.tolist() == pool[best].tolist()


def test_window_entropy_acquisition_matches_the_models_pixels(tiny_f3):
    """An entropy acquisition of windows picks the highest window means of the model's
    per-pixel entropy over the training sections."""
    import segforget.analysis.active_learning as al
    from segforget.data import load_data

    data = load_data(f"f3:{tiny_f3}")
    view = data.views[0]
    h, w = data.space("train", view).section_shape
    sections = np.asarray(data.sections("train", view))
    units = al._WindowUnits(sections, (h, w), (6, 5))
    labeled = np.array([1, 2, 5])
    pool = np.setdiff1d(units.all, labeled)
    settings = al.RoundTraining(epochs=1, steps_per_epoch=1, batch_size=2)
    model, _ = al._train_on_sections(
        data, view, sections[:2], pool, track=False, seed=0, settings=settings
    )
    chosen = al._acquire(
        units, "entropy", data, view, pool, 5, model=model, stats=None, seed=0, device="cpu"
    )
    images = torch.stack([item["image"] for item in data.dataset("train", view)])
    with torch.no_grad():
        p = torch.softmax(model(images).double(), dim=1).numpy()
    entropy = -(p * np.log(np.clip(p, 1e-12, None))).sum(axis=1)  # (S, H, W)
    reference = {}
    for unit in pool.tolist():
        index, t = divmod(unit, units.per_section)
        r, c, ph, pw = units.windows[t]
        reference[unit] = entropy[index, r : r + ph, c : c + pw].mean()
    best = sorted(reference, key=lambda u: (-reference[u], u))[:5]
    assert chosen.tolist() == best
