"""Independent reference for the tracker: plain Python over explicit per-pixel sequences.

Written from the tracker semantics (README, "Semantics") only; shares no code with
segforget.dynamics.
"""

from __future__ import annotations

import math

import numpy as np

IGNORE = 255


def _softmax_stats(logits: np.ndarray, target: int) -> tuple[float, float]:
    values = [float(v) for v in logits]
    top = max(values)
    total = sum(math.exp(v - top) for v in values)
    prob = math.exp(values[target] - top) / total
    others = [v for c, v in enumerate(values) if c != target]
    margin = values[target] - (max(others) if others else -math.inf)
    return prob, margin


def sequences(updates, num_pixels: int, *, ignore_index: int = IGNORE):
    """Per-pixel list of observations (correct, predicted class, prob, margin).

    Args:
        updates: iterable of (prediction, target, pixel_index) numpy arrays; prediction is
            (B, H, W) classes or (B, C, H, W) logits.
    """
    seqs = [[] for _ in range(num_pixels)]
    for prediction, target, pixel_index in updates:
        occurrences: dict[int, list] = {}
        batch, height, width = target.shape
        for b in range(batch):
            for h in range(height):
                for w in range(width):
                    pixel = int(pixel_index[b, h, w])
                    label = int(target[b, h, w])
                    if pixel < 0 or label == ignore_index:
                        continue
                    if prediction.ndim == 4:
                        logits = prediction[b, :, h, w]
                        predicted = int(np.argmax(logits))
                        prob, margin = _softmax_stats(logits, label)
                    else:
                        predicted = int(prediction[b, h, w])
                        prob = margin = None
                    occurrences.setdefault(pixel, []).append(
                        (predicted == label, predicted, prob, margin)
                    )
        for pixel, occ in occurrences.items():
            correct = all(o[0] for o in occ)
            predicted = max(o[1] for o in occ)
            prob = min(o[2] for o in occ) if occ[0][2] is not None else None
            margin = min(o[3] for o in occ) if occ[0][3] is not None else None
            seqs[pixel].append((correct, predicted, prob, margin))
    return seqs


#: The integer and boolean statistics, in ForgettingStats' field names.
INT_FIELDS = (
    "observations",
    "correct",
    "forgetting_events",
    "learning_events",
    "switch_events",
    "first_learned",
    "last_correct",
    "last_prediction",
    "never_learned",
    "unforgettable",
    "forgetting_score",
)
#: The float statistics recorded with ``confidence=True``.
FLOAT_FIELDS = ("confidence", "variability", "aum")


def statistics(seqs) -> dict[str, np.ndarray]:
    """The specified statistics computed from per-pixel sequences, one pixel at a time."""
    out: dict[str, list] = {k: [] for k in (*INT_FIELDS, *FLOAT_FIELDS)}
    for seq in seqs:
        a = [int(s[0]) for s in seq]
        p = [s[1] for s in seq]
        n = len(seq)
        forgetting = sum(1 for t in range(n - 1) if a[t] == 1 and a[t + 1] == 0)
        learning = sum(1 for t in range(n) if a[t] == 1 and (t == 0 or a[t - 1] == 0))
        switches = sum(1 for t in range(1, n) if p[t] != p[t - 1])
        first = next((t for t in range(n) if a[t] == 1), -1)
        never = n > 0 and sum(a) == 0
        out["observations"].append(n)
        out["correct"].append(sum(a))
        out["forgetting_events"].append(forgetting)
        out["learning_events"].append(learning)
        out["switch_events"].append(switches)
        out["first_learned"].append(first)
        out["last_correct"].append(bool(a[-1]) if n else False)
        out["last_prediction"].append(p[-1] if n else -1)
        out["never_learned"].append(never)
        out["unforgettable"].append(sum(a) > 0 and forgetting == 0)
        out["forgetting_score"].append(n if never else forgetting)
        if n and seq[0][2] is not None:
            probs = [s[2] for s in seq]
            mean = sum(probs) / n
            out["confidence"].append(mean)
            out["variability"].append(math.sqrt(sum((x - mean) ** 2 for x in probs) / n))
            out["aum"].append(sum(s[3] for s in seq) / n)
        else:
            for k in ("confidence", "variability", "aum"):
                out[k].append(math.nan)
    return {k: np.array(v) for k, v in out.items()}


def history(seqs, length: int) -> np.ndarray:
    """(P, length) int8 correctness per observation, -1 past the pixel's observations."""
    out = np.full((len(seqs), length), -1, dtype=np.int8)
    for pixel, seq in enumerate(seqs):
        for t, s in enumerate(seq):
            out[pixel, t] = int(s[0])
    return out
