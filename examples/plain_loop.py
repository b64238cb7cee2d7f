"""Add per-pixel forgetting tracking to a plain PyTorch training loop.

Run:  python examples/plain_loop.py [DATA_SPEC] [OUT_STORE]
      (default: synthetic:small and runs/plain_loop/dynamics/epoch/train_inline)

The tracking itself is the marked lines: one tracker for the training pixel space of a view,
one ``update`` per batch of an eval-mode pass after each epoch, and ``compute().save`` at the end.
"""

from __future__ import annotations

import sys

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from segforget.data import load_data
from segforget.dynamics import ForgettingTracker
from segforget.models import build_model


def main(
    spec: str = "synthetic:small",
    store: str = "runs/plain_loop/dynamics/epoch/train_inline",
    *,
    epochs: int = 5,
    model_name: str = "light",
) -> None:
    torch.manual_seed(0)
    data = load_data(spec)
    train_set = data.dataset("train", "inline")
    model = build_model(model_name, in_channels=data.in_channels, num_classes=data.num_classes)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    loader = DataLoader(train_set, batch_size=8, shuffle=True)
    # --- tracking (1/3): one tracker over the training pixel space of this view
    space = data.space("train", "inline")
    tracker = ForgettingTracker(space.num_pixels, data.num_classes, confidence=True)
    for epoch in range(epochs):
        model.train()
        for batch in loader:
            loss = F.cross_entropy(model(batch["image"]), batch["label"], ignore_index=255)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        # --- tracking (2/3): a clean pass over the training sections is one observation
        model.eval()
        with torch.no_grad():
            for batch in DataLoader(train_set, batch_size=16):
                tracker.update(model(batch["image"]), batch["label"], batch["pixel_index"])
        print(f"epoch {epoch + 1}: loss {loss.item():.3f}")
    # --- tracking (3/3): derive and save the per-pixel statistics
    stats = tracker.compute(
        meta={**space.meta(), "mode": "epoch", "class_names": list(data.class_names)}
    )
    stats.save(store, overwrite=True)
    observed = stats.observations > 0
    share = (stats.forgetting_events[observed] > 0).mean()
    print(f"{share:.1%} of training pixels were forgotten at least once")


if __name__ == "__main__":
    main(*sys.argv[1:3])
