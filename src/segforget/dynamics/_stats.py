"""Per-pixel statistics computed by the tracker, and their zarr store."""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from segforget.io import atomic_directory, to_jsonable

__all__ = ["ForgettingStats", "StoreChecksums", "STORE_FORMAT", "STORE_FORMAT_VERSION"]

STORE_FORMAT = "segforget.forgetting_stats"
STORE_FORMAT_VERSION = 1
"""Version written into every store; a store with another version is refused on load."""

_CHUNK = 1 << 20  # pixels per chunk: about 6 F3 sections, a few MB per array uncompressed
_HISTORY_PLANE_CHUNK = 8
_STORED = {
    "observations": np.int32,
    "correct": np.int32,
    "forgetting_events": np.int32,
    "switch_events": np.int32,
    "first_learned": np.int32,
    "last_correct": np.bool_,
    "last_prediction": np.int16,
}
_OPTIONAL = {"confidence": np.float32, "variability": np.float32, "aum": np.float32}


@dataclass(eq=False)
class ForgettingStats:
    """Per-pixel learning-dynamics statistics, arrays of length N (the pixels held).

    Attributes:
        observations: (N,) int32 number of observations n.
        correct: (N,) int32 number of correct observations.
        forgetting_events: (N,) int32 correct -> wrong transitions.
        learning_events: (N,) int32 transitions to correct (= forgetting + last_correct).
        switch_events: (N,) int32 changes of the predicted class between observations.
        first_learned: (N,) int32 0-based index of the first correct observation, -1 if none.
        last_correct: (N,) bool correctness of the last observation.
        last_prediction: (N,) int16 predicted class at the last observation, -1 if unobserved.
        never_learned: (N,) bool observed and never correct.
        unforgettable: (N,) bool learned and never forgotten.
        forgetting_score: (N,) int32 forgetting events; never-learned pixels score n.
        confidence, variability, aum: (N,) float32 (NaN where unobserved), or None when not
            recorded.
        history: (K, N) uint8 packed correctness bits (observation t is bit t % 8 of plane
            t // 8), or None; read it with :meth:`correctness_history`.
        meta: free-form JSON-able dict saved with the statistics (e.g. section shape).
        pixel_offset: index of the first held pixel in the pixel space (non-zero after a partial
            :meth:`load`).
    """

    observations: np.ndarray
    correct: np.ndarray
    forgetting_events: np.ndarray
    switch_events: np.ndarray
    first_learned: np.ndarray
    last_correct: np.ndarray
    last_prediction: np.ndarray
    confidence: np.ndarray | None = None
    variability: np.ndarray | None = None
    aum: np.ndarray | None = None
    history: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    pixel_offset: int = 0
    learning_events: np.ndarray = field(init=False)
    never_learned: np.ndarray = field(init=False)
    unforgettable: np.ndarray = field(init=False)
    forgetting_score: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.learning_events = self.forgetting_events + self.last_correct.astype(np.int32)
        learned = self.correct > 0
        self.never_learned = (self.observations > 0) & ~learned
        self.unforgettable = learned & (self.forgetting_events == 0)
        self.forgetting_score = np.where(
            self.never_learned, self.observations, self.forgetting_events
        ).astype(np.int32)

    @property
    def num_pixels(self) -> int:
        """N, the number of pixels held."""
        return int(self.observations.shape[0])

    @property
    def max_observations(self) -> int:
        """Largest observation count among the held pixels."""
        return int(self.observations.max()) if self.observations.size else 0

    def correctness_history(self, pixels: Any) -> np.ndarray:
        """Per-observation correctness of some pixels.

        Args:
            pixels: (M,) integer indices into the held arrays (0..N-1).

        Returns:
            (M, max_observations) int8: 1 correct, 0 wrong, -1 not observed (past the pixel's
            observation count).

        Raises:
            ValueError: if the statistics were computed without history.
        """
        if self.history is None:
            raise ValueError(
                "Expected statistics recorded with history, got none; build the tracker with "
                "ForgettingTracker(..., history=True)"
            )
        pixels = np.asarray(pixels, dtype=np.int64).reshape(-1)
        length = self.max_observations
        planes = self.history[:, pixels]  # (K, M)
        bits = np.unpackbits(planes[..., None], axis=-1, bitorder="little")  # (K, M, 8)
        bits = bits.transpose(1, 0, 2).reshape(len(pixels), -1)[:, :length].astype(np.int8)
        observed = np.arange(length) < self.observations[pixels, None]
        return np.where(observed, bits, np.int8(-1))

    # ------------------------------------------------------------------ store
    def _arrays(self) -> dict[str, np.ndarray]:
        arrays = {name: getattr(self, name) for name in _STORED}
        for name in _OPTIONAL:
            if getattr(self, name) is not None:
                arrays[name] = getattr(self, name)
        return arrays

    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """Write a zarr (v3) directory store, chunked and zstd-compressed, atomically.

        Plain numeric arrays plus JSON attributes (format, version, meta, CRC32 per array): no
        pickles. The store is written under a temporary name and renamed when complete.

        Raises:
            FileExistsError: if ``path`` exists and ``overwrite`` is False.
            TypeError: if ``meta`` is not JSON-able.
        """
        import zarr

        target = Path(path)
        try:
            meta = json.loads(json.dumps(to_jsonable(self.meta), allow_nan=False))
        except (TypeError, ValueError) as error:
            raise TypeError(
                f"Expected `meta` to be JSON-able, got {self.meta!r}: {error}"
            ) from None
        arrays = self._arrays()
        if self.history is not None:
            arrays["history"] = self.history
        compressor = zarr.codecs.ZstdCodec(level=3)
        with atomic_directory(target, overwrite=overwrite) as tmp:
            group = zarr.open_group(tmp, mode="w")
            for name, array in arrays.items():
                array = np.ascontiguousarray(array)
                if array.ndim == 2:
                    chunks = (_HISTORY_PLANE_CHUNK, _CHUNK)
                else:
                    chunks = (_CHUNK,)
                chunks = tuple(max(1, min(c, s)) for c, s in zip(chunks, array.shape))
                stored = group.create_array(
                    name,
                    shape=array.shape,
                    chunks=chunks,
                    dtype=array.dtype,
                    compressors=compressor,
                    config={"write_empty_chunks": True},
                )
                if array.size:
                    stored[...] = array
            group.attrs.update(
                {
                    "format": STORE_FORMAT,
                    "format_version": STORE_FORMAT_VERSION,
                    "num_pixels": self.num_pixels,
                    "pixel_offset": int(self.pixel_offset),
                    "arrays": sorted(arrays),
                    "crc32": {name: _crc32(a) for name, a in arrays.items()},
                    "meta": meta,
                }
            )
        return target

    @classmethod
    def info(cls, path: str | os.PathLike[str]) -> dict[str, Any]:
        """Read a store's attributes without loading arrays: num_pixels, arrays, meta, ...

        Raises:
            FileNotFoundError: if ``path`` does not exist.
            ValueError: if it is not a ForgettingStats store of a known format version.
        """
        _, attrs = _open(path)
        return attrs

    @classmethod
    def verify(cls, path: str | os.PathLike[str], *, block: int = 1 << 22) -> None:
        """Check a store's CRC32 checksums by streaming it ``block`` pixels at a time (memory
        bounded by one block), for readers that then :meth:`load` it in ``pixels`` ranges
        (which read only the chunks they need and cannot check the whole-array checksums).

        Raises:
            FileNotFoundError: if ``path`` does not exist.
            ValueError: if it is not a ForgettingStats store of a known format version, or is
                damaged (missing/corrupt chunks, checksum mismatch).
        """
        group, attrs = _open(path)
        total = attrs["num_pixels"]
        expected = attrs.get("crc32", {})
        for name in attrs["arrays"]:
            if name not in expected:
                continue
            try:
                stored = _complete_array(group, name, total)
                rows = stored.shape[0] if stored.ndim == 2 else None
                crc = 0
                # The checksum is over the C-ordered bytes: row by row for 2-D arrays.
                for row in range(rows or 1):
                    for start in range(0, total, block):
                        part = slice(start, min(start + block, total))
                        values = stored[part] if rows is None else stored[row, part]
                        crc = zlib.crc32(np.ascontiguousarray(values).view(np.uint8), crc)
            except Exception as error:  # noqa: BLE001 - any read failure means a damaged store
                raise ValueError(
                    f"Expected `path` to be an intact ForgettingStats store, got a damaged one "
                    f"at {path}: {error}; write it again"
                ) from None
            if crc & 0xFFFFFFFF != expected[name]:
                raise ValueError(
                    f"Expected `path` to be an intact ForgettingStats store, got a checksum "
                    f"mismatch in {name!r} at {path}; write it again"
                )

    @classmethod
    def read(
        cls, path: str | os.PathLike[str], names: Iterable[str], *, pixels: slice | None = None
    ) -> dict[str, np.ndarray]:
        """Some stored arrays of a pixel range, without building the statistics or checking
        checksums (call :meth:`verify` once first, or read the store through
        :class:`StoreChecksums`): the cheap way to re-read a few arrays of a large store.

        Args:
            path: the store directory.
            names: the arrays to read (e.g. ``("forgetting_events", "observations")``).
            pixels: a contiguous range ``slice(start, stop)`` of the pixel space (None: all).

        Returns:
            ``{name: (N,) array}`` (``history``: (K, N)), N the pixels of the range.

        Raises:
            FileNotFoundError: if ``path`` does not exist.
            ValueError: if it is not a ForgettingStats store, lacks one of ``names``, or is
                damaged (missing/corrupt chunks).
        """
        group, attrs = _open(path)
        names = list(names)
        missing = [name for name in names if name not in attrs["arrays"]]
        if missing:
            raise ValueError(
                f"Expected arrays of the store at {path} ({', '.join(attrs['arrays'])}), "
                f"got {missing}"
            )
        return _read_arrays(group, attrs, path, names, pixels)[1]

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, pixels: slice | None = None) -> ForgettingStats:
        """Load a store written by :meth:`save`.

        Args:
            path: the store directory.
            pixels: a contiguous range ``slice(start, stop)`` of the pixel space to load; only
                the chunks it touches are read (the way to analyze an F3-sized store section by
                section: section s of shape (H, W) is ``slice(s*H*W, (s+1)*H*W)``). None loads
                everything and verifies the CRC32 checksums; a range cannot (call
                :meth:`verify` once first).

        Raises:
            FileNotFoundError: if ``path`` does not exist.
            ValueError: if it is not a ForgettingStats store, has a newer or unknown format
                version, or is damaged (missing/corrupt chunks, checksum mismatch).
        """
        group, attrs = _open(path)
        start, values = _read_arrays(group, attrs, path, attrs["arrays"], pixels)
        if pixels is None:
            expected = attrs.get("crc32", {})
            for name, array in values.items():
                if name in expected and _crc32(array) != expected[name]:
                    raise ValueError(
                        f"Expected `path` to be an intact ForgettingStats store, got a checksum "
                        f"mismatch in {name!r} at {path}; write it again"
                    )
        for name, dtype in {**_STORED, **_OPTIONAL}.items():
            if name in values and values[name].dtype != dtype:
                raise ValueError(
                    f"Expected `path` to be an intact ForgettingStats store, got {name!r} of "
                    f"dtype {values[name].dtype} at {path}"
                )
        missing = set(_STORED) - set(values)
        if missing:
            raise ValueError(
                f"Expected `path` to be an intact ForgettingStats store, got one missing "
                f"{sorted(missing)} at {path}"
            )
        return cls(**values, meta=attrs["meta"], pixel_offset=attrs["pixel_offset"] + start)


class StoreChecksums:
    """The whole-array CRC32 check of a store that is read front to back in pixel ranges.

    :meth:`ForgettingStats.load` checks the checksums only when it loads a whole store, and
    :meth:`ForgettingStats.verify` reads the store once more. A reader that loads every range
    anyway (the analysis, section chunk by section chunk) feeds each loaded range here instead:
    the store is read once, and :meth:`check` compares the running checksums with the saved
    ones when the ranges have covered the pixel space. Until then, the data read is unverified.

    Example::

        sums = StoreChecksums(path)
        for start in range(0, total, step):
            stats = ForgettingStats.load(path, pixels=slice(start, start + step))
            sums.feed(stats)
        sums.check()  # ValueError if the store is damaged
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        _, attrs = _open(path)
        self.path = Path(path)
        self.total = int(attrs["num_pixels"])
        self.position = 0  # pixels covered so far, from the first one
        self._offset = int(attrs["pixel_offset"])
        self._expected: dict[str, int] = dict(attrs.get("crc32", {}))
        self._running: dict[str, list[int]] = {}  # per array: a running CRC per row
        self._row_bytes: dict[str, int] = {}  # per array: bytes fed per row

    @property
    def complete(self) -> bool:
        """True when the fed ranges have covered every pixel of the store."""
        return self.position >= self.total

    def feed(self, stats: ForgettingStats) -> bool:
        """Add a loaded range if it continues the ranges fed so far.

        Args:
            stats: what ``ForgettingStats.load(self.path, pixels=...)`` returned.

        Returns:
            True if the range was taken (it starts where the last one stopped); False if it
            was not (out of order, or the store is already covered), and nothing changes.
        """
        start = stats.pixel_offset - self._offset
        if start != self.position or self.complete or stats.num_pixels == 0:
            return False
        arrays = stats._arrays()
        if stats.history is not None:
            arrays["history"] = stats.history
        for name in self._expected:
            if name not in arrays:
                raise ValueError(
                    f"Expected statistics loaded from {self.path} (with {name!r}), got "
                    "statistics without it"
                )
            rows = arrays[name] if arrays[name].ndim == 2 else arrays[name][None]
            running = self._running.setdefault(name, [0] * rows.shape[0])
            for row, values in enumerate(rows):
                running[row] = zlib.crc32(np.ascontiguousarray(values).view(np.uint8), running[row])
            row_bytes = rows.shape[1] * rows.dtype.itemsize
            self._row_bytes[name] = self._row_bytes.get(name, 0) + row_bytes
        self.position += stats.num_pixels
        return True

    def check(self) -> None:
        """Compare the running checksums with the store's.

        Raises:
            RuntimeError: if the fed ranges do not yet cover the store.
            ValueError: on a checksum mismatch (the store is damaged).
        """
        if not self.complete:
            raise RuntimeError(
                f"Expected ranges covering all {self.total} pixels of {self.path}, got "
                f"{self.position}"
            )
        for name, expected in self._expected.items():
            rows = self._running.get(name) or [0]  # no rows (a (0, N) array): empty bytes
            crc = rows[0]
            row_bytes = self._row_bytes.get(name, 0)
            for part in rows[1:]:  # C order: the rows one after another
                crc = crc32_concat(crc, part, row_bytes)
            if crc & 0xFFFFFFFF != expected:
                raise ValueError(
                    f"Expected `path` to be an intact ForgettingStats store, got a checksum "
                    f"mismatch in {name!r} at {self.path}; write it again"
                )


def crc32_concat(first: int, second: int, second_length: int) -> int:
    """CRC32 of the bytes ``a + b`` from ``crc32(a)``, ``crc32(b)`` and ``len(b)``.

    CRC32 is affine over GF(2) in its start value and data, so
    ``crc32(a + b) = crc32(b) ^ crc32(zeros, crc32(a)) ^ crc32(zeros)`` with ``len(b)`` zero
    bytes; zlib's C speed over the zeros (a few ms per 10 MB) makes this cheap enough.
    """
    zeros = np.zeros(min(max(second_length, 1), 1 << 24), dtype=np.uint8)
    shifted, blank, left = first, 0, second_length
    while left:
        part = zeros[: min(left, zeros.size)]
        shifted = zlib.crc32(part, shifted)
        blank = zlib.crc32(part, blank)
        left -= part.size
    return (second ^ shifted ^ blank) & 0xFFFFFFFF


def _read_arrays(
    group: Any, attrs: dict[str, Any], path: Any, names: Iterable[str], pixels: slice | None
) -> tuple[int, dict[str, np.ndarray]]:
    """(start, {name: array[..., start:stop]}) of a pixel range, checked for missing chunks."""
    total = attrs["num_pixels"]
    if pixels is None:
        start, stop = 0, total
    else:
        if not isinstance(pixels, slice) or pixels.step not in (None, 1):
            raise ValueError(f"Expected `pixels` to be a slice(start, stop), got {pixels!r}")
        start, stop, _ = pixels.indices(total)
        stop = max(start, stop)
    values: dict[str, Any] = {}
    try:
        for name in names:
            values[name] = _complete_array(group, name, total)[..., start:stop]
    except Exception as error:  # noqa: BLE001 - any read failure means a damaged store
        raise ValueError(
            f"Expected `path` to be an intact ForgettingStats store, got a damaged one at "
            f"{path}: {error}; write it again"
        ) from None
    return start, values


def _complete_array(group: Any, name: str, total: int) -> Any:
    """A stored array of the pixel space, checked for its shape and for missing chunks (zarr
    would read those as fill values)."""
    stored = group[name]
    expected_rows = stored.shape[:1] if name == "history" else ()
    if stored.shape != (*expected_rows, total):
        raise ValueError(f"array {name!r} has shape {stored.shape}")
    if stored.nchunks_initialized != stored.nchunks:
        raise ValueError(f"array {name!r} is missing chunks")
    return stored


def _crc32(array: np.ndarray) -> int:
    return zlib.crc32(np.ascontiguousarray(array).view(np.uint8).reshape(-1)) & 0xFFFFFFFF


def _open(path: str | os.PathLike[str]) -> tuple[Any, dict[str, Any]]:
    import zarr

    target = Path(path)
    if not target.exists():
        raise FileNotFoundError(
            f"Expected `path` to be a ForgettingStats store, got missing {target}"
        )
    try:
        group = zarr.open_group(target, mode="r")
        attrs = dict(group.attrs)
    except Exception as error:  # noqa: BLE001 - unreadable metadata means not our store
        raise ValueError(
            f"Expected `path` to be a ForgettingStats store (written by ForgettingStats.save), "
            f"got an unreadable directory {target}: {error}"
        ) from None
    if attrs.get("format") != STORE_FORMAT:
        raise ValueError(
            f"Expected `path` to be a ForgettingStats store (written by ForgettingStats.save), "
            f"got format {attrs.get('format')!r} at {target}"
        )
    version = attrs.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version != STORE_FORMAT_VERSION:
        raise ValueError(
            f"Expected a ForgettingStats store of format version {STORE_FORMAT_VERSION}, got "
            f"version {version!r} at {target}; upgrade segforget to read newer stores"
        )
    required = ("num_pixels", "pixel_offset", "arrays", "meta")
    if any(key not in attrs for key in required) or not isinstance(attrs["num_pixels"], int):
        raise ValueError(
            f"Expected `path` to be an intact ForgettingStats store, got attributes missing "
            f"{[k for k in required if k not in attrs]} at {target}"
        )
    return group, attrs
