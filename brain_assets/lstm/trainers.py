"""Compiled training networks kept from fit to fit, one per architecture.

Keras traces a new graph of the training and validation steps for every model it fits: about a
second of CPU for the retrain's LSTM, as much as its epochs on 3,000 bars. A fit still builds its
own network, so the seed decides its initial weights and its dropout generators as before; it then
trains a kept network of the same architecture started from exactly that state (the same weights
and seed generator states, an optimizer with no history) and copies the trained weights back. A
fitted model owns its weights as before, and a fit gives the numbers it gives without the kept
network (tested).

A network is taken out of the keep while it trains, so two threads never train the same one.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import fields
from typing import Any

import numpy as np

from brain_assets.lstm.network import NetworkSpec, build_networks

KEPT_PER_PROCESS = 4
"""Architectures kept; the least recently used goes first. A retrain uses one."""


_NOT_IN_THE_GRAPH = frozenset(
    {"feature_mean", "feature_std", "target_mean", "target_std", "metadata"}
)
"""NetworkSpec's fields that only the inference network holds (the scalers) or that describe it."""


def architecture(spec: NetworkSpec) -> tuple[Any, ...]:
    """What a training network's graph depends on: every field of ``spec`` but the scalers."""
    return tuple(getattr(spec, f.name) for f in fields(spec) if f.name not in _NOT_IN_THE_GRAPH)


_KEPT: OrderedDict[tuple[Any, ...], list[Any]] = OrderedDict()
_LOCK = threading.Lock()


def take(spec: NetworkSpec) -> Any:
    """A compiled training network for ``spec``'s architecture: a kept one, else a new one.
    Build it before seeding the fit: a new network's initialisers draw from the seed."""
    key = architecture(spec)
    with _LOCK:
        free = _KEPT.get(key)
        if free:
            _KEPT.move_to_end(key)
            return free.pop()
    return build_networks(spec).training


def give_back(spec: NetworkSpec, trainer: Any) -> None:
    """Keep ``trainer`` for the next fit of its architecture."""
    key = architecture(spec)
    with _LOCK:
        _KEPT.setdefault(key, []).append(trainer)
        _KEPT.move_to_end(key)
        while len(_KEPT) > KEPT_PER_PROCESS:
            _KEPT.popitem(last=False)


def forget() -> None:
    """Drop every kept network."""
    with _LOCK:
        _KEPT.clear()


def _state(model: Any) -> list[Any]:
    # The layers' weights and their dropout seed generators, in layer order (the generators'
    # names differ from model to model, their order does not). No metric state is in here.
    return list(model.variables)


def start_from(trainer: Any, fresh: Any) -> None:
    """Put ``fresh``'s initial state into ``trainer`` and clear its optimizer's history."""
    source, target = _state(fresh), _state(trainer)
    if [tuple(v.shape) for v in source] != [tuple(v.shape) for v in target]:
        raise RuntimeError("a kept LSTM training network does not match the new one's layers")
    for kept, new in zip(target, source, strict=True):
        kept.assign(new)
    for variable in trainer.optimizer.variables:
        # The step count and the moments; the learning rate is the architecture's own.
        if variable.name != "learning_rate":
            variable.assign(np.zeros(variable.shape, dtype=variable.dtype))


def copy_back(trainer: Any, fresh: Any) -> None:
    """The trained weights into the fit's own network."""
    for new, kept in zip(_state(fresh), _state(trainer), strict=True):
        new.assign(kept)
