"""The epochs of an LSTM fit, one ``train_on_batch`` per batch, instead of Keras' ``fit``.

Keras' ``fit`` feeds numpy arrays through a tf.data pipeline: its iterator is rebuilt every epoch
and hands each batch over between threads. The LSTM's batches are small, so the hand-overs are
much of the work: one retrain-sized fit (1,977 windows of 24 x 32, 9 epochs) on a core of its
own kept that core busy 61% of the time and took 2.5 s; this loop keeps it busy and takes 1.1 s
(the same network, pinned to one core, 2026-12-07). With two symbols' runs on 2 cores, those idle
spells were most of what kept the demo from using both cores.

The epochs are Keras' own, with its ``EarlyStopping(monitor="val_loss",
restore_best_weights=True)``: each epoch visits the training windows once in a new random order
(from the fit's seed), its loss is the mean of the batch losses weighted by batch size, and its
validation loss the mean over every validation window; training stops once ``patience`` epochs
in a row have not lowered the best validation loss, and the weights of the best epoch are kept.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from brain_assets.events import log_event

VALIDATION_CHUNK = 4096
"""Validation windows per test call: the mean is exact whatever the chunking."""


@dataclass(frozen=True)
class Epochs:
    """What :func:`run_epochs` did."""

    history: dict[str, list[float]]
    """``{"loss": [...], "val_loss": [...]}``, one value per epoch run."""
    best_epoch: int
    """1-based epoch whose weights the trainer ends with."""


def run_epochs(
    trainer: Any,
    windows: np.ndarray,
    target: np.ndarray,
    val_windows: np.ndarray,
    val_target: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    patience: int,
    seed: int,
    verbose: int = 0,
) -> Epochs:
    """Train ``trainer`` (a compiled Keras model); it ends with the best epoch's weights. Each
    epoch is logged (``lstm_epoch``: at INFO when ``verbose``, else DEBUG)."""
    order = np.random.default_rng(seed)
    history: dict[str, list[float]] = {"loss": [], "val_loss": []}
    best: float | None = None
    best_epoch, best_weights, waited = 0, None, 0
    count = len(windows)
    for epoch in range(epochs):
        shuffled = order.permutation(count)
        total = 0.0
        for start in range(0, count, batch_size):
            batch = shuffled[start : start + batch_size]
            logs = trainer.train_on_batch(windows[batch], target[batch], return_dict=True)
            total += float(logs["loss"]) * len(batch)
        history["loss"].append(total / count)
        validation = _mean_loss(trainer, val_windows, val_target)
        history["val_loss"].append(validation)
        log_event(
            "lstm_epoch",
            logging.INFO if verbose else logging.DEBUG,
            epoch=epoch + 1,
            loss=round(total / count, 6),
            val_loss=round(validation, 6),
        )
        waited += 1
        # Keras' rule: the first epoch is the best so far whatever its loss (NaN included, and
        # nothing is ever lower than NaN); an equal loss is no improvement.
        if best is None or validation < best:
            best, best_epoch, best_weights, waited = validation, epoch, trainer.get_weights(), 0
        elif waited >= patience and epoch > 0:
            break
    if best_weights is not None:
        trainer.set_weights(best_weights)
    return Epochs(history, best_epoch + 1)


def _mean_loss(trainer: Any, windows: np.ndarray, target: np.ndarray) -> float:
    total = 0.0
    for start in range(0, len(windows), VALIDATION_CHUNK):
        chunk = slice(start, start + VALIDATION_CHUNK)
        logs = trainer.test_on_batch(windows[chunk], target[chunk], return_dict=True)
        total += float(logs["loss"]) * len(windows[chunk])
    return total / len(windows)
