"""Test pixels in bodies thicker than any in training: geometry the model has not seen.

Along each trace (a column of a section, depth down) the labels form bodies: unbroken
vertical runs of one class. A class whose test bodies are thicker than every training body of
that class shows the model a geometry it was never trained on (a salt dome taller than the
training one), and its pixels deep inside those bodies are often called something else.
:class:`ThicknessAccumulator` measures the thickest training body of each class, then splits
each class's test pixels into those in bodies no thicker (*within*) and those in thicker ones
(*beyond*), with the accuracy of each.

The mirror case is a unit thinner than in training: the model places a boundary about
where training taught it, so under a thin unit the top rows of the next one are called the
unit above. The accumulator also counts, for each pair of classes ``a`` over ``b`` touching on a
trace, the thickness of ``a`` on the training traces and the test accuracy of the top
:data:`TOP_ROWS` rows of ``b`` by the thickness of ``a`` above them; ``under_thin`` in
:meth:`ThicknessAccumulator.result` splits them at the training's 10th percentile.

Shape legend: N sections, H depth, W lateral, C classes, L thicknesses (rows).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = [
    "body_thickness",
    "ThicknessAccumulator",
    "thickness_findings",
    "feed_training_labels",
    "feed_test_predictions",
]

#: A class is reported when at least this share of its test pixels lies beyond ...
BEYOND_SHARE = 0.05
#: ... and its accuracy there is at least this much lower than within.
ACCURACY_GAP = 0.2
#: The rows at the top of a body whose accuracy is split by the thickness of the body above.
TOP_ROWS = 3
#: A body above is *thin* when thinner than this quantile of the training bodies of its class
#: over the same class (so at most this share of the training contacts is thin).
THIN_QUANTILE = 0.1


def _bodies(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The bodies of (N, H, W) labels, traces laid end to end.

    Returns:
        ``flat`` (N*W*H,) the labels trace by trace (depth fastest), ``first`` the flat index
        of each body's top pixel, ``lengths`` each body's thickness.
    """
    height = labels.shape[1]
    flat = np.ascontiguousarray(np.moveaxis(labels, 1, 2)).reshape(-1)
    starts = np.ones(flat.size, dtype=bool)
    starts[1:] = flat[1:] != flat[:-1]
    starts[::height] = True  # every trace begins a body
    first = np.flatnonzero(starts)
    lengths = np.diff(np.append(first, flat.size))
    return flat, first, lengths


def body_thickness(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The body (unbroken vertical run of one label) each pixel belongs to.

    Args:
        labels: (N, H, W) integer labels, depth down axis 1.

    Returns:
        ``thickness`` and ``below_top``, each (N, H, W) int64: the length of the pixel's body
        on its trace, and the pixel's row minus the body's first row.
    """
    labels = np.asarray(labels)
    if labels.ndim != 3:
        raise ValueError(f"Expected `labels` of shape (N, H, W), got {labels.shape}")
    n, h, w = labels.shape
    if labels.size == 0:
        empty = np.zeros(labels.shape, np.int64)
        return empty, empty.copy()
    _, first, lengths = _bodies(labels)
    thickness = np.repeat(lengths, lengths)
    below_top = np.arange(labels.size, dtype=np.int64) - np.repeat(first, lengths)
    shape = (n, w, h)
    return (
        np.moveaxis(thickness.reshape(shape), 2, 1).astype(np.int64),
        np.moveaxis(below_top.reshape(shape), 2, 1),
    )


class ThicknessAccumulator:
    """Each class's thickest training body, and its test accuracy within and beyond it; the
    test accuracy of each class's top rows under thin and usual bodies of the class above.

    Feed every training chunk to :meth:`update_train` first, then the test chunks to
    :meth:`update_test`. Labels outside ``0 .. C-1`` (ignore) are skipped.
    """

    def __init__(self, class_names: Sequence[str]) -> None:
        self.class_names = list(class_names)
        c = len(self.class_names)
        self.train_max = np.zeros(c, dtype=np.int64)
        self.pixels = np.zeros((2, c), dtype=np.int64)  # [within, beyond] x class
        self.correct = np.zeros((2, c), dtype=np.int64)
        self.beyond_as = np.zeros((c, c), dtype=np.int64)  # true class x predicted class
        # (C above, C below, L thickness of the body above): training contacts (traces where
        # the pair touches), test contacts, and the test top rows below them: pixels, right,
        # called the class above.
        self.train_contacts = np.zeros((c, c, 1), dtype=np.int64)
        self.test_contacts = np.zeros((c, c, 1), dtype=np.int64)
        self.top_pixels = np.zeros((c, c, 1), dtype=np.int64)
        self.top_correct = np.zeros((c, c, 1), dtype=np.int64)
        self.top_as_above = np.zeros((c, c, 1), dtype=np.int64)
        self._testing = False

    def _fit(self, length: int) -> None:
        """Widen the (C, C, L) tables to hold thicknesses up to ``length``."""
        have = self.train_contacts.shape[2]
        if length < have:
            return
        pad = ((0, 0), (0, 0), (0, length + 1 - have))
        for name in (
            "train_contacts",
            "test_contacts",
            "top_pixels",
            "top_correct",
            "top_as_above",
        ):
            setattr(self, name, np.pad(getattr(self, name), pad))

    def _contacts(
        self, labels: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The bodies of ``labels`` that lie under another body of a valid class.

        Returns:
            ``flat`` (labels trace by trace), ``first`` and ``lengths`` of those bodies,
            ``above`` and ``below`` (their classes and the class above them), ``thick`` (the
            thickness of the body above); all per body but ``flat``.
        """
        c = len(self.class_names)
        height = labels.shape[1]
        flat, first, lengths = _bodies(labels)
        body_class = flat[first].astype(np.int64)
        under = np.flatnonzero(first % height != 0)  # bodies with one above on their trace
        above, below = body_class[under - 1], body_class[under]
        keep = (above >= 0) & (above < c) & (below >= 0) & (below < c)
        under = under[keep]
        return flat, first[under], lengths[under], above[keep], below[keep], lengths[under - 1]

    def update_train(self, labels: np.ndarray) -> None:
        """Record the bodies of a chunk of training sections ((N, H, W) labels)."""
        if self._testing:
            raise RuntimeError("Expected every update_train before the first update_test")
        labels = np.asarray(labels)
        if labels.ndim != 3:
            raise ValueError(f"Expected `labels` of shape (N, H, W), got {labels.shape}")
        if labels.size == 0:
            return
        flat, first, lengths = _bodies(labels)
        body_class = flat[first].astype(np.int64)
        valid = (body_class >= 0) & (body_class < len(self.class_names))
        np.maximum.at(self.train_max, body_class[valid], lengths[valid])
        _, _, _, above, below, thick = self._contacts(labels)
        if thick.size:
            self._fit(int(thick.max()))
            np.add.at(self.train_contacts, (above, below, thick), 1)

    def update_test(self, prediction: np.ndarray, labels: np.ndarray) -> None:
        """Count a chunk of test sections: (N, H, W) predicted classes and labels."""
        self._testing = True
        labels, prediction = np.asarray(labels), np.asarray(prediction)
        if prediction.shape != labels.shape:
            raise ValueError(
                f"Expected predictions of the labels' shape {labels.shape}, got {prediction.shape}"
            )
        c = len(self.class_names)
        thickness, _ = body_thickness(labels)
        valid = (labels >= 0) & (labels < c)
        true = labels[valid].astype(np.int64)
        pred = prediction[valid].astype(np.int64)
        beyond = thickness[valid] > self.train_max[true]
        right = pred == true
        for side, sel in ((0, ~beyond), (1, beyond)):
            self.pixels[side] += np.bincount(true[sel], minlength=c)
            self.correct[side] += np.bincount(true[sel & right], minlength=c)
        inside = (pred >= 0) & (pred < c) & beyond
        self.beyond_as += np.bincount(true[inside] * c + pred[inside], minlength=c * c).reshape(
            c, c
        )
        self._update_top_rows(prediction, labels)

    def _update_top_rows(self, prediction: np.ndarray, labels: np.ndarray) -> None:
        """The top :data:`TOP_ROWS` rows of each body under another: right, called the class
        above, by the pair's classes and the thickness of the body above."""
        flat, first, lengths, above, below, thick = self._contacts(labels)
        if thick.size == 0:
            return
        self._fit(int(thick.max()))
        predicted = np.ascontiguousarray(np.moveaxis(prediction, 1, 2)).reshape(-1)
        top = np.minimum(lengths, TOP_ROWS)
        # each contact's top rows, as flat indices, and its number (to sum per contact)
        owner = np.repeat(np.arange(first.size), top)
        index = np.repeat(first, top) + (
            np.arange(owner.size) - np.repeat(np.cumsum(top) - top, top)
        )
        right = np.bincount(owner, weights=predicted[index] == flat[index], minlength=first.size)
        as_above = np.bincount(
            owner, weights=predicted[index] == above[owner], minlength=first.size
        )
        key = (above, below, thick)
        np.add.at(self.test_contacts, key, 1)
        np.add.at(self.top_pixels, key, top)
        np.add.at(self.top_correct, key, right.astype(np.int64))
        np.add.at(self.top_as_above, key, as_above.astype(np.int64))

    def _under_thin(self, k: int) -> dict[str, Any] | None:
        """``under_thin`` of :meth:`result` for class ``k`` (None: no test top rows under a
        class that also lies over ``k`` on a training trace)."""
        pixels = self.top_pixels[:, k].sum(axis=1)  # (C,) by the class above
        pixels = np.where(self.train_contacts[:, k].sum(axis=1) > 0, pixels, 0)
        if pixels.max() == 0:
            return None
        a = int(np.argmax(pixels))
        train = self.train_contacts[a, k]
        cumulative = np.cumsum(train)
        thin_below = int(np.searchsorted(cumulative, THIN_QUANTILE * cumulative[-1]))
        sides = {}
        for key, sel in (("thin", slice(0, thin_below)), ("usual", slice(thin_below, None))):
            n = int(self.top_pixels[a, k, sel].sum())
            sides[key] = {
                "pixels": n,
                "accuracy": float(self.top_correct[a, k, sel].sum() / n) if n else None,
                "as_above": float(self.top_as_above[a, k, sel].sum() / n) if n else None,
            }
        return {
            "above": self.class_names[a],
            "thin_below": thin_below,
            "train_median": _median(train),
            "test_median": _median(self.test_contacts[a, k]),
            **sides,
            "thin_share": sides["thin"]["pixels"] / int(pixels[a]),
        }

    def result(self) -> dict[str, Any]:
        """Per class: ``train_max_thickness`` (rows), ``within`` and ``beyond`` (test
        ``pixels`` and ``accuracy``, None without pixels), ``beyond_share`` (of the class's
        test pixels) and ``beyond_predicted_as`` (the two most frequent wrong classes there,
        with their shares of the beyond pixels); ``under_thin``: the class's top
        :data:`TOP_ROWS` test rows under the class ``above`` it most often lies under (None
        without any): ``thin_below`` (the :data:`THIN_QUANTILE` quantile of that class's
        thickness over this one on the training traces), ``train_median`` and
        ``test_median`` (its thickness there, per trace), ``thin`` and ``usual`` (top rows
        under a body of ``above`` thinner than ``thin_below`` and the others: ``pixels``,
        ``accuracy``, ``as_above``: the share called ``above``) and ``thin_share``."""
        out: dict[str, Any] = {}
        for k, name in enumerate(self.class_names):
            sides = {}
            for side, key in ((0, "within"), (1, "beyond")):
                n = int(self.pixels[side, k])
                acc = float(self.correct[side, k] / n) if n else None
                sides[key] = {"pixels": n, "accuracy": acc}
            total = sides["within"]["pixels"] + sides["beyond"]["pixels"]
            wrong = self.beyond_as[k].copy()
            wrong[k] = 0
            order = [j for j in np.argsort(-wrong, kind="stable")[:2] if wrong[j] > 0]
            beyond_n = sides["beyond"]["pixels"]
            out[name] = {
                "train_max_thickness": int(self.train_max[k]),
                **sides,
                "beyond_share": sides["beyond"]["pixels"] / total if total else None,
                "beyond_predicted_as": {
                    self.class_names[j]: float(wrong[j] / beyond_n) for j in order
                },
                "under_thin": self._under_thin(k),
            }
        return out


def _median(counts: np.ndarray) -> int | None:
    """The median thickness of a histogram (counts per thickness); None when empty."""
    total = int(counts.sum())
    if total == 0:
        return None
    return int(np.searchsorted(np.cumsum(counts), total / 2))


def _section_chunks(count: int, section_pixels: int, chunk_pixels: int) -> list[np.ndarray]:
    """Section numbers ``0 .. count-1`` in chunks of at most ``chunk_pixels`` pixels (>= 1)."""
    step = max(1, chunk_pixels // max(1, section_pixels))
    return [np.arange(start, min(count, start + step)) for start in range(0, count, step)]


def feed_training_labels(
    thickness: ThicknessAccumulator, data: Any, *, chunk_pixels: int = 4_000_000
) -> None:
    """Feed the training labels of ``data`` (split ``train+val``) to ``thickness``, in chunks.

    One view is enough: every trace of the training volume lies in a section of each view.
    """
    view = data.views[0]
    space = data.space("train+val", view)
    height, width = space.section_shape
    for sections in _section_chunks(space.num_sections, height * width, chunk_pixels):
        thickness.update_train(data.label_sections("train+val", view, sections))


def feed_test_predictions(
    thickness: ThicknessAccumulator,
    data: Any,
    predictions: Callable[[str, str], np.ndarray | None],
    *,
    chunk_pixels: int = 4_000_000,
) -> bool:
    """Feed every test split's predictions with their labels to ``thickness``, in chunks.

    Args:
        predictions: (split, view) -> (N, H, W) predicted classes, or None where a run saved
            none (a view it did not train on).

    Returns:
        Whether any prediction was fed.
    """
    tested = False
    for split in data.test_splits:
        for view in data.views:
            predicted = predictions(split, view)
            if predicted is None:
                continue
            n, height, width = predicted.shape
            for sections in _section_chunks(n, height * width, chunk_pixels):
                labels = data.label_sections(split, view, sections)
                thickness.update_test(np.asarray(predicted[sections[0] : sections[-1] + 1]), labels)
                tested = True
    return tested


def thickness_findings(result: dict[str, Any] | None) -> list[str]:
    """A plain statement for each class whose test pixels in thicker-than-training bodies
    are many (>= 5 %) and much less accurate (by >= 0.2) than the rest; then one for each
    class whose top rows under a thin body of the class above (``under_thin``) are."""
    notes = []
    for name, row in (result or {}).items():
        within, beyond = row["within"]["accuracy"], row["beyond"]["accuracy"]
        share = row["beyond_share"]
        if within is None or beyond is None or share is None or row["train_max_thickness"] == 0:
            continue
        if share < BEYOND_SHARE or within - beyond < ACCURACY_GAP:
            continue
        wrong = ", ".join(f"{w} {s:.0%}" for w, s in row["beyond_predicted_as"].items())
        notes.append(
            f"On the test volumes, {share:.0%} of the {name} pixels lie in bodies thicker than "
            f"any {name} body on a training trace (at most {row['train_max_thickness']} rows); "
            f"the model gets {beyond:.0%} of them right against {within:.0%} of the others "
            f"(predicted there as: {wrong or 'nothing else'}): a geometry the training data "
            f"does not show. Training sections with {name} bodies that thick would show it (on "
            "the synthetic survey they lifted the accuracy there from 2% to 62%); warps that "
            "thicken the unit did not."
        )
    for name, row in (result or {}).items():
        note = _under_thin_finding(name, row.get("under_thin"))
        if note:
            notes.append(note)
    return notes


def _under_thin_finding(name: str, row: dict[str, Any] | None) -> str:
    """The statement for class ``name``'s top rows under a thin body of the class above it,
    or "" when they are few (< 5 %) or not much less accurate (by < 0.2) than the others."""
    if not row:
        return ""
    thin, usual, share = row["thin"]["accuracy"], row["usual"]["accuracy"], row["thin_share"]
    if thin is None or usual is None or share < BEYOND_SHARE or usual - thin < ACCURACY_GAP:
        return ""
    above = row["above"]
    return (
        f"On the test volumes, {share:.0%} of the top {TOP_ROWS} rows of {name} lie under "
        f"{above} thinner than {row['thin_below']} rows (thinner than {1 - THIN_QUANTILE:.0%} "
        f"of the {above} over {name} on the training traces; typically {row['test_median']} "
        f"rows there, {row['train_median']} in training); the model gets {thin:.0%} of them "
        f"right against {usual:.0%} under thicker {above}, calling {row['thin']['as_above']:.0%} "
        f"of them {above}: the model puts the boundary as deep as the thicker {above} of "
        "training would, a geometry the training data rarely shows."
    )
