"""One-row prediction without scikit-learn's per-call overhead: the engine's hot call.

``Predictor.predict`` asks the model for ONE row at a time. scikit-learn's ``predict`` validates
its input, checks feature names, dispatches to joblib or OpenMP and allocates for a batch on every
call: for one row that costs more than the arithmetic (about 0.5 ms for the ridge pipeline, 1.2 ms
for hist gradient boosting, 3.4 ms for a 100-tree forest). :func:`compile_one_row` reads the
fitted model's parameters once and returns a plain numpy function of the row.

What it guarantees: the function gives the number ``estimator.predict`` gives for that row
(``brain_assets_tests/core/test_fast_predict.py`` checks every model type within a relative
1e-12, rows at split thresholds and missing values included): the same comparisons (the forest's
on the row cast to float32, as scikit-learn casts it; a NaN takes the side the split learnt),
the same leaf values, summed in the same order. It is meant for rows scikit-learn accepts; the
Predictor refuses non-finite features before it predicts. A model it does not know (the LSTM, a
forest with several outputs, a pipeline other than scaler + ridge, a scikit-learn whose private
attributes look different) gives None, and the caller keeps using ``estimator.predict``.

What is read from the model is a :class:`OneRowModel`: plain arrays, which the registry stores
beside the artifact (an npz, no pickle, with its own sha256), so that ``load_predictor`` gives the
engine its model without importing scikit-learn.

Only numpy is imported here; scikit-learn's classes are looked up when an estimator comes from it,
which means it is already loaded.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["OneRow", "OneRowModel", "compile_one_row", "one_row_model"]

OneRow = Callable[[np.ndarray], float]
"""A fitted model's prediction for one row: a 1-D float64 array in training column order."""

# What a private attribute that moved or changed shape in another scikit-learn raises here.
_DRIFT = (AttributeError, KeyError, IndexError, TypeError, ValueError)

# scikit-learn's tree marks a leaf with this child index.
_TREE_LEAF = -1


def compile_one_row(estimator: Any, *, feature_names: Sequence[str] | None = None) -> OneRow | None:
    """A function that predicts one row as ``estimator.predict`` does, or None for a model this
    module does not know (see :func:`one_row_model`)."""
    model = one_row_model(estimator, feature_names=feature_names)
    return None if model is None else model.function()


def one_row_model(
    estimator: Any, *, feature_names: Sequence[str] | None = None
) -> OneRowModel | None:
    """What a one-row prediction of ``estimator`` needs, as arrays, or None for a model this
    module does not know.

    Knows a ``Pipeline`` of exactly ``StandardScaler`` and ``Ridge``, a single-output
    ``RandomForestRegressor`` and a ``HistGradientBoostingRegressor`` with squared error and no
    categorical features. Given ``feature_names`` (the order the caller's rows are in), a model
    fitted on named columns in another order gives None: scikit-learn would refuse those rows.
    """
    module = type(estimator).__module__
    if not module.startswith("sklearn."):
        return None
    if feature_names is not None:
        fitted = getattr(estimator, "feature_names_in_", None)
        if fitted is not None and [str(name) for name in fitted] != list(feature_names):
            return None
    from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
    from sklearn.pipeline import Pipeline

    compilers: dict[type, Callable[[Any], OneRowModel | None]] = {
        Pipeline: _ridge_pipeline,
        RandomForestRegressor: _random_forest,
        HistGradientBoostingRegressor: _hist_gradient_boosting,
    }
    # The exact class: a subclass may predict differently.
    compiler = compilers.get(type(estimator))
    if compiler is None:
        return None
    try:
        return compiler(estimator)
    except _DRIFT:
        return None


def _row_reader(n_features: int) -> Callable[[np.ndarray], np.ndarray]:
    """The row as a 1-D float64 array, or a ValueError for another number of features."""

    def read(x: np.ndarray) -> np.ndarray:
        row = np.asarray(x, dtype=np.float64)
        if row.shape != (n_features,):
            raise ValueError(f"expected one row of {n_features} features, got shape {row.shape}")
        return row

    return read


def _ridge_pipeline(pipeline: Any) -> OneRowModel | None:
    from sklearn.linear_model import Ridge
    from sklearn.preprocessing import StandardScaler

    if len(pipeline.steps) != 2:
        return None
    scaler, ridge = pipeline.steps[0][1], pipeline.steps[1][1]
    if type(scaler) is not StandardScaler or type(ridge) is not Ridge:
        return None
    coef = np.asarray(ridge.coef_, dtype=np.float64)
    if coef.ndim != 1:
        return None
    n = coef.shape[0]
    intercept = np.float64(np.asarray(ridge.intercept_, dtype=np.float64).reshape(()))
    # Subtracting 0 and dividing by 1 are exact, so a flag that is off becomes the identity.
    mean = np.zeros(n)
    scale = np.ones(n)
    if scaler.with_mean:
        mean = np.asarray(scaler.mean_, dtype=np.float64)
    if scaler.with_std and scaler.scale_ is not None:
        scale = np.asarray(scaler.scale_, dtype=np.float64)
    if mean.shape != (n,) or scale.shape != (n,):
        return None
    return OneRowModel(
        "ridge", {"mean": mean, "scale": scale, "coef": coef, "intercept": np.asarray(intercept)}
    )


def _ridge_function(arrays: Mapping[str, np.ndarray]) -> OneRow:
    mean, scale, coef = (
        np.asarray(arrays[name], dtype=np.float64) for name in _ARRAYS["ridge"][:3]
    )
    if coef.ndim != 1 or mean.shape != coef.shape or scale.shape != coef.shape:
        raise ValueError("the scaler's and the ridge's arrays differ in shape")
    intercept = np.float64(np.asarray(arrays["intercept"], dtype=np.float64).reshape(()))
    read = _row_reader(coef.shape[0])

    def predict(x: np.ndarray) -> float:
        return float((read(x) - mean) / scale @ coef + intercept)

    return predict


@dataclass(frozen=True)
class _Trees:
    """Every node of every tree, concatenated: children are indices into the whole, and a leaf
    is its own two children, so that walking ``depth`` steps from the roots ends on the leaves
    of all trees at once."""

    feature: np.ndarray
    threshold: np.ndarray
    missing_right: np.ndarray
    left: np.ndarray
    right: np.ndarray
    value: np.ndarray
    roots: np.ndarray
    depth: int

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "feature": self.feature,
            "threshold": self.threshold,
            "missing_right": self.missing_right,
            "left": self.left,
            "right": self.right,
            "value": self.value,
            "roots": self.roots,
            "depth": np.asarray(self.depth),
        }

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> _Trees:
        """The trees of :meth:`arrays`, read back; a ValueError for arrays that do not make
        trees (a child or root outside the nodes, arrays of different lengths)."""
        count = len(arrays["value"])
        trees = cls(
            feature=np.asarray(arrays["feature"], dtype=np.intp),
            threshold=np.asarray(arrays["threshold"], dtype=np.float64),
            missing_right=np.asarray(arrays["missing_right"], dtype=bool),
            left=np.asarray(arrays["left"], dtype=np.intp),
            right=np.asarray(arrays["right"], dtype=np.intp),
            value=np.asarray(arrays["value"], dtype=np.float64),
            roots=np.asarray(arrays["roots"], dtype=np.intp),
            depth=int(arrays["depth"]),
        )
        per_node = (trees.feature, trees.threshold, trees.missing_right, trees.left, trees.right)
        if count == 0 or any(array.shape != (count,) for array in (*per_node, trees.value)):
            raise ValueError("the trees' node arrays differ in length")
        for index in (trees.left, trees.right, trees.roots):
            if index.size == 0 or index.min() < 0 or index.max() >= count:
                raise ValueError("a child or root outside the nodes")
        if trees.feature.min() < 0:
            raise ValueError("a negative feature index")
        trees._check_shape()
        return trees

    def _check_shape(self) -> None:
        """Trees as :func:`_concatenate` lays them out, or a ValueError: the roots start each
        tree in order, a leaf is its own two children, every other node's children come after
        it within its own tree (so no walk can cycle), and every leaf is at most ``depth``
        steps from its root (so the walk ends on leaves)."""
        count = len(self.value)
        roots = self.roots
        if roots[0] != 0 or (np.diff(roots) <= 0).any():
            raise ValueError("the roots do not start the trees in order")
        own = np.arange(count)
        tree_of = np.searchsorted(roots, own, side="right") - 1
        leaf = (self.left == own) & (self.right == own)
        for child in (self.left, self.right):
            inner = ~leaf & ((child <= own) | (tree_of[child] != tree_of))
            if inner.any():
                raise ValueError("a node whose child is not after it in its own tree")
        if self.depth > count:
            raise ValueError(f"depth {self.depth} is more than the trees' {count} nodes")
        # Level by level from the roots: after ``depth`` steps only leaves may remain.
        frontier = roots
        for level in range(self.depth + 1):
            inner = frontier[~leaf[frontier]]
            if inner.size == 0:
                return
            if level == self.depth:
                raise ValueError(f"a leaf deeper than the depth {self.depth}")
            frontier = np.unique(np.concatenate([self.left[inner], self.right[inner]]))

    def leaf_values(self, x: np.ndarray) -> np.ndarray:
        """Each tree's leaf value for row ``x`` (NaN takes the side its split learnt)."""
        # Every node's decision at once: one gather over a few thousand nodes costs less than a
        # gather per level, and the walk below is then one gather per level.
        values = x[self.feature]
        go_right = values > self.threshold
        if np.isnan(x).any():
            go_right = np.where(np.isnan(values), self.missing_right, go_right)
        following = np.where(go_right, self.right, self.left)
        node = self.roots
        for _ in range(self.depth):
            node = following[node]
        return self.value[node]


def _concatenate(trees: Sequence[dict[str, np.ndarray]], depth: int) -> _Trees:
    """A :class:`_Trees` from each tree's node arrays: ``feature``, ``threshold``,
    ``missing_left``, ``left``, ``right`` (own indices), ``is_leaf`` and ``value``."""
    parts: dict[str, list[np.ndarray]] = {
        name: [] for name in ("feature", "threshold", "missing_right", "left", "right", "value")
    }
    roots = []
    offset = 0
    for tree in trees:
        count = len(tree["value"])
        own = np.arange(count, dtype=np.intp)
        leaf = np.asarray(tree["is_leaf"], dtype=bool)
        if count == 0 or leaf.shape != (count,):
            raise ValueError("malformed tree")
        roots.append(offset)
        parts["feature"].append(np.where(leaf, 0, tree["feature"]).astype(np.intp))
        parts["threshold"].append(np.where(leaf, np.inf, tree["threshold"]).astype(np.float64))
        parts["missing_right"].append(~np.asarray(tree["missing_left"], dtype=bool))
        for side in ("left", "right"):
            child = np.where(leaf, own, np.asarray(tree[side], dtype=np.intp))
            if child.min() < 0 or child.max() >= count:
                raise ValueError("a child outside its tree")
            parts[side].append(child + offset)
        parts["value"].append(np.asarray(tree["value"], dtype=np.float64))
        offset += count
    joined = {name: np.concatenate(arrays) for name, arrays in parts.items()}
    return _Trees(**joined, roots=np.asarray(roots, dtype=np.intp), depth=int(depth))


def _random_forest(forest: Any) -> OneRowModel | None:
    if int(forest.n_outputs_) != 1:
        return None
    n_features = int(forest.n_features_in_)
    trees = []
    depth = 0
    for member in forest.estimators_:
        tree = member.tree_
        count = int(tree.node_count)
        value = np.asarray(tree.value)
        if tree.n_outputs != 1 or value.shape != (count, 1, 1):
            return None
        trees.append(
            {
                "feature": tree.feature,
                "threshold": tree.threshold,
                "missing_left": tree.missing_go_to_left,
                "left": tree.children_left,
                "right": tree.children_right,
                "is_leaf": np.asarray(tree.children_left) == _TREE_LEAF,
                # A regression tree's value is its leaf's mean: what DecisionTreeRegressor
                # predicts (the tests check it against the forest's predict).
                "value": value[:, 0, 0],
            }
        )
        depth = max(depth, int(tree.max_depth))
    if not trees:
        return None
    nodes = _concatenate(trees, depth)
    if nodes.feature.max() >= n_features:
        return None
    allow_nan = bool(forest.__sklearn_tags__().input_tags.allow_nan)
    return OneRowModel(
        "forest", {**nodes.arrays(), "n_features": np.asarray(n_features), "allow_nan": allow_nan}
    )


def _forest_function(arrays: Mapping[str, np.ndarray]) -> OneRow:
    nodes = _Trees.from_arrays(arrays)
    allow_nan = bool(arrays["allow_nan"])
    read = _row_reader(int(arrays["n_features"]))
    count = len(nodes.roots)

    def predict(x: np.ndarray) -> float:
        # scikit-learn compares the row cast to float32 with float64 thresholds: a value between
        # two float32 neighbours decides a tie as it does there only after the same cast.
        row = read(x).astype(np.float32).astype(np.float64)
        if not np.isfinite(row).all():
            _refuse_forest_row(row, allow_nan)
        # Added tree by tree, in the forest's order, as its predict adds them (cumsum is
        # sequential; a sum would pair them and could differ in the last bits).
        return float(np.cumsum(nodes.leaf_values(row))[-1] / count)

    return predict


def _refuse_forest_row(row: np.ndarray, allow_nan: bool) -> None:
    """The ValueError scikit-learn's forest raises for this row, if any."""
    if np.isinf(row).any():
        raise ValueError("the row holds an infinite value or one too large for float32")
    if not allow_nan:
        raise ValueError("the row holds NaN, which this forest does not accept")


def _hist_gradient_boosting(model: Any) -> OneRowModel | None:
    if model.loss != "squared_error" or int(model.n_trees_per_iteration_) != 1:
        return None
    # Squared error's link is the identity: the raw prediction is the prediction.
    if type(model._loss.link).__name__ != "IdentityLink":
        return None
    if getattr(model, "is_categorical_", None) is not None or model._preprocessor is not None:
        return None
    baseline = np.asarray(model._baseline_prediction, dtype=np.float64)
    if baseline.shape != (1, 1):
        return None
    n_features = int(model.n_features_in_)
    # The baseline goes first, as a one-leaf tree, so that the sequential sum below adds the
    # iterations to it in scikit-learn's order.
    trees: list[dict[str, np.ndarray]] = [_one_leaf(float(baseline[0, 0]))]
    depth = 0
    for iteration in model._predictors:
        if len(iteration) != 1:
            return None
        nodes = iteration[0].nodes
        if np.asarray(nodes["is_categorical"], dtype=bool).any():
            return None
        trees.append(
            {
                "feature": nodes["feature_idx"],
                "threshold": nodes["num_threshold"],
                "missing_left": nodes["missing_go_to_left"],
                "left": nodes["left"],
                "right": nodes["right"],
                "is_leaf": nodes["is_leaf"],
                "value": nodes["value"],
            }
        )
        depth = max(depth, int(nodes["depth"].max()))
    joined = _concatenate(trees, depth)
    if joined.feature.max() >= n_features:
        return None
    return OneRowModel("boosting", {**joined.arrays(), "n_features": np.asarray(n_features)})


def _boosting_function(arrays: Mapping[str, np.ndarray]) -> OneRow:
    joined = _Trees.from_arrays(arrays)
    read = _row_reader(int(arrays["n_features"]))

    def predict(x: np.ndarray) -> float:
        # NaN and infinities are valid input here, as in scikit-learn's predict.
        return float(np.cumsum(joined.leaf_values(read(x)))[-1])

    return predict


def _one_leaf(value: float) -> dict[str, np.ndarray]:
    return {
        "feature": np.zeros(1, dtype=np.intp),
        "threshold": np.zeros(1),
        "missing_left": np.zeros(1, dtype=bool),
        "left": np.zeros(1, dtype=np.intp),
        "right": np.zeros(1, dtype=np.intp),
        "is_leaf": np.ones(1, dtype=bool),
        "value": np.full(1, value),
    }


_FUNCTIONS: dict[str, Callable[[Mapping[str, np.ndarray]], OneRow]] = {
    "ridge": _ridge_function,
    "forest": _forest_function,
    "boosting": _boosting_function,
}
_TREE_ARRAYS = ("feature", "threshold", "missing_right", "left", "right", "value", "roots", "depth")
_ARRAYS = {
    "ridge": ("mean", "scale", "coef", "intercept"),
    "forest": (*_TREE_ARRAYS, "n_features", "allow_nan"),
    "boosting": (*_TREE_ARRAYS, "n_features"),
}


@dataclass(frozen=True)
class OneRowModel:
    """A fitted model's one-row prediction as plain arrays (see the module)."""

    kind: str
    """``ridge`` (scaler and ridge), ``forest`` or ``boosting``."""
    arrays: Mapping[str, Any]

    def function(self) -> OneRow:
        """The prediction for one row, as ``estimator.predict`` gives it."""
        return _FUNCTIONS[self.kind](self.arrays)

    def to_bytes(self) -> bytes:
        """An npz file (numeric arrays only: it loads without pickle)."""
        buffer = io.BytesIO()
        np.savez(buffer, kind=np.asarray(self.kind), **self.arrays)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> OneRowModel:
        """Read :meth:`to_bytes`; a ValueError for anything else (checked before it is used)."""
        try:
            stored = np.load(io.BytesIO(data), allow_pickle=False)
            if not isinstance(stored, np.lib.npyio.NpzFile):
                raise ValueError("a single array, not an npz archive")
            with stored:
                arrays = {name: stored[name] for name in stored.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise ValueError(f"not a one-row model file: {exc}") from exc
        kind = str(arrays.pop("kind", ""))
        if kind not in _ARRAYS or set(arrays) != set(_ARRAYS[kind]):
            raise ValueError(f"not a one-row model file: kind {kind!r}, arrays {sorted(arrays)}")
        model = cls(kind, arrays)
        try:
            model.function()
            if kind != "ridge":
                trees = _Trees.from_arrays(arrays)
                if trees.feature.max() >= int(arrays["n_features"]):
                    raise ValueError("a split on a feature the model does not have")
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"a malformed one-row model ({kind}): {exc}") from exc
        return model
