"""Cost of forgetting tracking during training: epoch time with tracking none / presentation /
epoch on one synthetic preset, as ratios to ``none`` measured in the same run.

    python benchmarks/bench_training.py [--preset small] [--epochs 3] [--model light]
                                        [--device auto] [--json FILE]

Per mode it trains ``--epochs`` epochs (same seed, so the same batches) and reports the
fastest epoch after the first (the first warms up allocators and caches), wall and CPU time:

- ``train``: the training batches (forward, backward, step; presentation tracking inside);
- ``eval``:  what follows in the epoch: validation, plus the tracking pass in epoch mode;
- ``pass``:  the epoch-mode tracking pass alone (the extra inference pass over the training
  sections), the cost epoch mode adds on top of ``none``;
- ``hook``:  host time inside the presentation tracker's batch hook (the direct cost of
  presentation tracking, steadier than the difference of two training times on a shared
  machine; on GPU the host time only, the device runs asynchronously);
- ``save``:  from the end of the epoch's callbacks to its checkpoint being taken (the host
  copy of model, optimizer and tracker state; with ``--sync-checkpoints`` the write to disk
  too, else that runs in the background while the next epoch trains).

Targets (issue 5): presentation <= 1.03x none; epoch mode no more than its extra pass.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from segforget.data import load_data
from segforget.train import Callback, RunConfig, train
from segforget.train.callbacks import PresentationTracking

_HOOK_S = [0.0]  # host seconds inside PresentationTracking.on_batch_end, this epoch


def _timed_hook(original):
    def hook(self, trainer, batch, logits, loss) -> None:
        start = time.perf_counter()
        original(self, trainer, batch, logits, loss)
        _HOOK_S[0] += time.perf_counter() - start

    return hook


PresentationTracking.on_batch_end = _timed_hook(PresentationTracking.on_batch_end)


class Clock(Callback):
    """Wall and CPU (process) time of the training batches and of what follows in each epoch.

    CPU time is reported too because wall time is unreliable on a shared machine; the
    evaluation part is validation (+ the tracking pass in epoch mode).
    """

    def __init__(self) -> None:
        self.epochs: list[dict[str, float]] = []

    def on_epoch_start(self, trainer, epoch) -> None:
        self._batches = trainer.batches_per_epoch()
        self._seen = 0
        _HOOK_S[0] = 0.0
        self._start = (time.perf_counter(), time.process_time())

    def on_batch_end(self, trainer, batch, logits, loss) -> None:
        self._seen += 1
        if self._seen == self._batches:
            self._trained = (time.perf_counter(), time.process_time())

    def on_checkpoint(self, trainer, epoch, path) -> None:
        self.epochs[-1]["save_s"] = time.perf_counter() - self._evaluated

    def on_epoch_end(self, trainer, epoch, record) -> None:
        now = (time.perf_counter(), time.process_time())
        self._evaluated = now[0]
        self.epochs.append(
            {
                "train_s": self._trained[0] - self._start[0],
                "train_cpu_s": self._trained[1] - self._start[1],
                "eval_s": now[0] - self._trained[0],
                "eval_cpu_s": now[1] - self._trained[1],
                "pass_s": record.get("tracking_pass_s", 0.0),
                "hook_s": _HOOK_S[0],
            }
        )


def measure(mode: str, args: argparse.Namespace, workdir: Path) -> dict[str, float]:
    config = RunConfig()
    config.data.spec = f"synthetic:{args.preset}"
    config.model.name = args.model
    config.train.epochs = args.epochs
    config.train.batch_size = args.batch_size
    config.train.device = args.device
    config.track.mode = mode
    config.log.progress = False
    config.log.tensorboard = False
    config.train.checkpoint_async = not args.sync_checkpoints
    clock = Clock()
    train(config, workdir / mode, force=True, callbacks=[clock])
    later = clock.epochs[1:] or clock.epochs
    return {key: min(e[key] for e in later) for key in later[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="small")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--model", default="light")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--sync-checkpoints",
        action="store_true",
        help="write each checkpoint before the next epoch (train.checkpoint_async=false)",
    )
    args = parser.parse_args()

    started = time.perf_counter()
    data = load_data(f"synthetic:{args.preset}")  # generate/cache before timing
    device = "cuda" if args.device == "auto" and torch.cuda.is_available() else args.device
    sections = sum(data.sections("train", v).size for v in data.views)
    print(
        f"preset {args.preset}: {sections} training sections per epoch, model {args.model}, "
        f"device {device}, torch threads {torch.get_num_threads()}"
    )
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for mode in ("none", "presentation", "epoch"):
            results[mode] = measure(mode, args, Path(tmp))
    base = results["none"]
    print(
        f"{'tracking':>13} {'train s':>8} {'ratio':>6} {'train cpu s':>11} {'ratio':>6} "
        f"{'eval s':>7} {'eval cpu s':>10} {'pass s':>7} {'hook s':>7} {'save s':>7} "
        f"{'epoch s':>8} {'ratio':>6}"
    )

    def whole(r: dict[str, float]) -> float:
        return r["train_s"] + r["eval_s"] + r["save_s"]

    for mode, r in results.items():
        print(
            f"{mode:>13} {r['train_s']:8.2f} {r['train_s'] / base['train_s']:6.3f} "
            f"{r['train_cpu_s']:11.2f} {r['train_cpu_s'] / base['train_cpu_s']:6.3f} "
            f"{r['eval_s']:7.2f} {r['eval_cpu_s']:10.2f} {r['pass_s']:7.2f} {r['hook_s']:7.2f} "
            f"{r['save_s']:7.2f} {whole(r):8.2f} {whole(r) / whole(base):6.3f}"
        )
    epoch, none = results["epoch"], results["none"]
    total_epoch, total_none = whole(epoch), whole(none)
    print(
        f"epoch mode: whole epoch {total_epoch:.2f} s vs {total_none:.2f} s "
        f"({total_epoch / total_none:.3f}x); it adds {total_epoch - total_none:.2f} s, "
        f"its extra inference pass takes {epoch['pass_s']:.2f} s"
    )
    hook = results["presentation"]
    print(
        f"presentation tracking: {hook['hook_s']:.2f} s per epoch inside its hook, "
        f"{hook['hook_s'] / hook['train_s']:.1%} of the epoch's training time"
    )
    print(f"benchmark wall time {time.perf_counter() - started:.0f} s")
    if args.json:
        args.json.write_text(
            json.dumps(
                {"args": vars(args) | {"json": str(args.json)}, "results": results}, indent=2
            )
        )


if __name__ == "__main__":
    main()
