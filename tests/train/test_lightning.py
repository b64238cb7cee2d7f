"""The Lightning callback records what a reference tracker fed the same logits records."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

pl = pytest.importorskip("lightning.pytorch")

from segforget.data import load_data  # noqa: E402
from segforget.dynamics import ForgettingStats, ForgettingTracker  # noqa: E402
from segforget.models import build_model  # noqa: E402
from segforget.train.lightning import ForgettingCallback  # noqa: E402


class Module(pl.LightningModule):
    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.net = build_model("tiny", in_channels=1, num_classes=num_classes)
        self.seen: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def forward(self, image):
        return self.net(image)

    def training_step(self, batch, batch_idx):
        logits = self(batch["image"])
        self.seen.append((logits.detach().clone(), batch["label"], batch["pixel_index"]))
        return {"loss": F.cross_entropy(logits, batch["label"], ignore_index=255), "logits": logits}

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-2)


def _fit(callback, module, loader):
    trainer = pl.Trainer(
        max_epochs=2,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[callback],
    )
    trainer.fit(module, loader)


@pytest.mark.parametrize(
    ("mode", "warmup"), [("presentation", 0), ("epoch", 0), ("presentation", 1), ("epoch", 1)]
)
def test_callback_matches_reference_tracker(tiny_survey, tmp_path, mode, warmup):
    """The callback records what a reference tracker fed the same logits records, from the
    epoch after ``warmup_epochs`` on."""
    torch.manual_seed(0)
    data = load_data(tiny_survey)
    dataset = data.dataset("train", "crossline")
    loader = torch.utils.data.DataLoader(dataset, batch_size=4, shuffle=True)
    eval_loader = torch.utils.data.DataLoader(dataset, batch_size=4)
    space = data.space("train", "crossline")
    module = Module(data.num_classes)
    store = tmp_path / "store"
    callback = ForgettingCallback(
        space.num_pixels,
        data.num_classes,
        store=store,
        mode=mode,
        epoch_loader=eval_loader if mode == "epoch" else None,
        meta=space.meta(),
        warmup_epochs=warmup,
    )
    reference = ForgettingTracker(space.num_pixels, data.num_classes)
    if mode == "epoch":
        # Reference: the same eval pass, recorded by wrapping the callback's epoch hook.
        original = callback.on_train_epoch_end

        def hook(trainer, pl_module):
            original(trainer, pl_module)
            if callback._epochs <= warmup:
                return
            pl_module.eval()
            with torch.no_grad():
                for batch in eval_loader:
                    logits = pl_module(batch["image"])
                    reference.update(logits, batch["label"], batch["pixel_index"])
            pl_module.train()

        callback.on_train_epoch_end = hook
    _fit(callback, module, loader)
    if mode == "presentation":
        per_epoch = len(module.seen) // 2
        for logits, label, pixel_index in module.seen[warmup * per_epoch :]:
            reference.update(logits, label, pixel_index)
    stats = ForgettingStats.load(store)
    expected = reference.compute()
    for name in ("observations", "correct", "forgetting_events", "switch_events", "first_learned"):
        np.testing.assert_array_equal(getattr(stats, name), getattr(expected, name), err_msg=name)
    assert stats.meta["mode"] == mode and stats.meta["epochs"] == 2
    assert stats.meta["warmup_epochs"] == warmup
    assert stats.observations.max() == 2 - warmup


def test_epoch_mode_needs_a_loader():
    with pytest.raises(ValueError, match="Expected `epoch_loader`"):
        ForgettingCallback(10, 2, mode="epoch")


def test_presentation_needs_logits_in_the_step_output(tiny_survey):
    callback = ForgettingCallback(10, 2)
    with pytest.raises(ValueError, match="training_step to return a dict with 'logits'"):
        callback.on_train_batch_end(None, None, torch.tensor(1.0), {}, 0)


def test_warmup_must_be_a_count():
    with pytest.raises(ValueError, match="Expected `warmup_epochs` to be an integer >= 0"):
        ForgettingCallback(10, 2, warmup_epochs=-1)
