"""The LSTM's epochs (lstm.epochs.run_epochs) follow Keras' fit with EarlyStopping(monitor=
"val_loss", restore_best_weights=True): checked here on a scripted trainer, without TensorFlow;
the LSTM tests check the same loop on real networks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from brain_assets.lstm.epochs import Epochs, run_epochs


class ScriptedTrainer:
    """Keras' train/test-on-batch surface: a batch's loss is its size, the validation losses come
    from a script, and the "weights" count the batches trained so far."""

    def __init__(self, val_losses: list[float]) -> None:
        self.val_losses = iter(val_losses)
        self.trained = 0
        self.batches: list[np.ndarray] = []
        self.validated: list[int] = []

    def train_on_batch(self, x: np.ndarray, y: np.ndarray, return_dict: bool) -> dict[str, float]:
        assert return_dict and len(x) == len(y)
        self.trained += 1
        self.batches.append(x[:, 0, 0].copy())
        return {"loss": float(len(x))}

    def test_on_batch(self, x: np.ndarray, y: np.ndarray, return_dict: bool) -> dict[str, float]:
        # Validation only ever sees validation windows, whole, with their targets.
        if not (return_dict and len(x) == len(y) and x.shape[1:] == ROWS.shape[1:]):
            raise AssertionError(f"a validation call got {x.shape} windows, {y.shape} targets")
        self.validated.append(len(x))
        return {"loss": next(self.val_losses)}

    def get_weights(self) -> list[np.ndarray]:
        return [np.array(self.trained)]

    def set_weights(self, weights: list[np.ndarray]) -> None:
        self.trained = int(weights[0])


ROWS = np.arange(10, dtype=np.float32).reshape(10, 1, 1)
TARGET = np.zeros((10, 1), dtype=np.float32)
VALIDATION = np.zeros((3, 1, 1), dtype=np.float32)


def fit(val_losses: list[float], *, patience: int, seed: int = 0) -> tuple[ScriptedTrainer, Epochs]:
    trainer = ScriptedTrainer(val_losses)
    done = run_epochs(
        trainer,
        ROWS,
        TARGET,
        VALIDATION,
        TARGET[:3],
        epochs=len(val_losses),
        batch_size=4,
        patience=patience,
        seed=seed,
    )
    return trainer, done


def test_stops_after_patience_epochs_without_a_better_validation_loss() -> None:
    trainer, done = fit([3.0, 2.0, 2.5, 2.1, 1.9, 1.0], patience=2)
    assert done.history["val_loss"] == [3.0, 2.0, 2.5, 2.1]  # epochs 3 and 4 did not beat 2.0
    assert trainer.validated == [len(VALIDATION)] * 4  # every window, once an epoch
    # The weights of epoch 2 (3 batches an epoch) are the ones kept.
    assert done.best_epoch == 2
    assert trainer.trained == 2 * 3


def test_an_epochs_loss_is_the_batch_losses_mean_weighted_by_batch_size() -> None:
    _, done = fit([1.0], patience=1)
    assert done.history["loss"] == [pytest.approx((4 * 4 + 4 * 4 + 2 * 2) / 10)]


def test_each_epoch_visits_every_window_once_in_a_new_order_set_by_the_seed() -> None:
    trainer, _ = fit([3.0, 2.0, 1.0], patience=5, seed=7)
    epochs = [np.concatenate(trainer.batches[i : i + 3]) for i in range(0, 9, 3)]
    for order in epochs:
        assert sorted(order.tolist()) == list(range(10))
    assert not np.array_equal(epochs[0], epochs[1])
    again, _ = fit([3.0, 2.0, 1.0], patience=5, seed=7)
    np.testing.assert_array_equal(np.concatenate(again.batches), np.concatenate(trainer.batches))
    other, _ = fit([3.0, 2.0, 1.0], patience=5, seed=8)
    assert not np.array_equal(np.concatenate(other.batches), np.concatenate(trainer.batches))


def test_patience_zero_stops_at_the_first_epoch_that_is_no_better_after_the_first() -> None:
    trainer, done = fit([2.0, 2.0, 1.0], patience=0)
    assert done.history["val_loss"] == [2.0, 2.0]  # an equal loss is no improvement
    assert done.best_epoch == 1 and trainer.trained == 3


def test_nan_validation_losses_follow_keras() -> None:
    # Keras' EarlyStopping takes the first epoch as the best whatever its loss; nothing is lower
    # than NaN after it, so training stops after `patience` more epochs with epoch 1's weights.
    trainer, done = fit([math.nan, 1.5, 1.4, 1.3, 1.2], patience=3)
    assert len(done.history["val_loss"]) == 4
    assert done.best_epoch == 1 and trainer.trained == 3
    # A NaN after the first epoch is never an improvement, and does not stop a later one.
    trainer, done = fit([2.0, math.nan, 1.5], patience=2)
    assert done.best_epoch == 3 and trainer.trained == 9


def test_the_validation_loss_is_the_mean_over_every_window_whatever_the_chunks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from brain_assets.lstm import epochs

    class Averaging(ScriptedTrainer):
        def test_on_batch(self, x: np.ndarray, y: np.ndarray, return_dict: bool) -> dict:
            if len(x) > epochs.VALIDATION_CHUNK or len(x) != len(y):
                raise AssertionError(f"a validation chunk of {len(x)} windows")
            self.validated.append(len(x))
            return {"loss": float(np.mean(x))}

    monkeypatch.setattr(epochs, "VALIDATION_CHUNK", 4)
    trainer = Averaging([])
    done = run_epochs(
        trainer, ROWS, TARGET, ROWS, TARGET, epochs=1, batch_size=4, patience=1, seed=0
    )
    assert trainer.validated == [4, 4, 2]
    assert done.history["val_loss"] == [pytest.approx(4.5)]
