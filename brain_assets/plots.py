"""PNG charts for people reading the Dagster UI (matplotlib, imported on first use), and the
folder of chart files they are kept in.

Charts are files, not metadata: ``save_chart`` writes each once under
``$BRAIN_HOME/charts/<symbol>/<asset>/<chart>-<sha256>.png`` and the assets' metadata names the
file, so Dagster's event log holds no image bytes; ``prune_charts`` (the ``maintenance`` job)
deletes the files past their retention."""

from __future__ import annotations

import hashlib
import io
import logging
import os
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd

from brain_assets.environment import brain_home
from brain_assets.events import log_event


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # no display on servers; must precede the pyplot import
    import matplotlib.pyplot as plt

    return plt


def _png(figure: object) -> bytes:
    plt = _pyplot()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")  # type: ignore[attr-defined]
    plt.close(figure)
    return buffer.getvalue()


# A chart is about 700 pixels wide: more points than this per line add drawing time (seconds at a
# year of minute bars, and one rectangle per regime run) and nothing a reader can see.
MAX_POINTS = 2000


def thinned(series: pd.Series, max_points: int = MAX_POINTS) -> pd.Series:
    """Every k-th point of ``series`` so that at most ``max_points`` remain, first and last kept."""
    if len(series) <= max_points:
        return series
    step = -(-len(series) // (max_points - 1))  # ceiling division
    positions = [*range(0, len(series) - 1, step), len(series) - 1]
    return series.iloc[positions]


REGIME_COLOURS = {"low": "#d8f0d2", "normal": "#f2f2f2", "high": "#fde2b8", "extreme": "#f7c1c1"}


def equity_curves_png(
    curves: Mapping[str, pd.Series], title: str, regimes: pd.Series | None = None
) -> bytes:
    """One line per model: compounded net equity, over the volatility regimes when given
    (a Series of regime labels on the same timestamps, shaded behind the curves)."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(8, 3.5))
    if regimes is not None and len(regimes):
        _shade_regimes(axis, thinned(regimes))
    for label, curve in curves.items():
        shown = thinned(curve)
        axis.plot(shown.index, shown.to_numpy(), label=label, linewidth=1.2)
    axis.axhline(1.0, color="grey", linewidth=0.8, linestyle="--")
    axis.set_title(title)
    axis.set_ylabel("equity (net of fees)")
    axis.legend(loc="best", fontsize=8)
    figure.autofmt_xdate()
    return _png(figure)


def _shade_regimes(axis: Any, regimes: pd.Series) -> None:
    from matplotlib.patches import Patch

    labels = regimes.fillna("none").to_numpy()
    times = regimes.index
    start = 0
    for i in range(1, len(labels) + 1):
        if i == len(labels) or labels[i] != labels[start]:
            colour = REGIME_COLOURS.get(str(labels[start]))
            if colour:
                axis.axvspan(times[start], times[i - 1], color=colour, linewidth=0, zorder=0)
            start = i
    handles = [Patch(color=c, label=r) for r, c in REGIME_COLOURS.items() if r in set(labels)]
    legend = axis.legend(handles=handles, loc="upper left", fontsize=7, title="regime")
    axis.add_artist(legend)


def importance_bars_png(table: pd.DataFrame, title: str, top_n: int = 15) -> bytes:
    """Horizontal bars of the top features (columns feature, importance), strongest on top."""
    plt = _pyplot()
    top = table.sort_values("rank").head(top_n).iloc[::-1]
    figure, axis = plt.subplots(figsize=(7, 0.3 * len(top) + 1.2))
    colours = ["#2b7bba" if value >= 0 else "#d1495b" for value in top["importance"]]
    axis.barh(top["feature"], top["importance"], color=colours)
    axis.set_title(title)
    axis.set_xlabel("importance")
    return _png(figure)


def attention_bars_png(attention: list[float], title: str) -> bytes:
    """Mean attention weight per lag (lag 0 = the bar being predicted)."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(7, 2.5))
    axis.bar(range(len(attention)), attention, color="#2b7bba")
    axis.set_xlabel("lag (bars before the predicted bar)")
    axis.set_ylabel("mean attention")
    axis.set_title(title)
    return _png(figure)


def data_health_png(history: pd.DataFrame, title: str) -> bytes:
    """A symbol's data health per run: bars dropped and repaired by the cleaning (bars), and the
    runs whose bars were blocked (red marks). ``history`` has columns timestamp, dropped,
    repaired, blocked, oldest first."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(8, 2.8))
    positions = range(len(history))
    axis.bar(positions, history["dropped"], color="#d1495b", label="bars dropped")
    axis.bar(
        positions,
        history["repaired"],
        bottom=history["dropped"],
        color="#edae49",
        label="bars repaired",
    )
    top = float(max(1, (history["dropped"] + history["repaired"]).max()))
    blocked = [i for i, flag in enumerate(history["blocked"]) if flag]
    if blocked:
        axis.scatter(blocked, [top * 1.08] * len(blocked), marker="v", color="black", zorder=3)
        axis.plot([], [], "v", color="black", label="blocked (nothing trained)")
    axis.set_ylim(0, top * 1.18)
    labels = [pd.Timestamp(t).strftime("%m-%d %H:%M") for t in history["timestamp"]]
    step = max(1, len(labels) // 10)
    axis.set_xticks(list(positions)[::step], labels[::step], rotation=30, fontsize=7)
    axis.set_ylabel("bars")
    axis.set_title(title)
    axis.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7)
    return _png(figure)


def replay_png(
    timeline: pd.DataFrame,
    title: str,
    flip_step: int | None = None,
    *,
    label: str = "managed",
    compare: tuple[str, pd.DataFrame] | None = None,
) -> bytes:
    """A replay at a glance: the equity of whichever version traded (flat while standing aside),
    beside holding the symbol over the same bars and standing aside (1.0), promotions and
    rollbacks marked, and the active version underneath. ``flip_step``: the first step whose new
    bars come from a changed market; ``compare``: another policy's timeline on the same bars."""
    plt = _pyplot()
    figure, (top, bottom) = plt.subplots(
        2, 1, figsize=(9, 5), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    steps = timeline["step"].to_numpy()
    equity = (1.0 + timeline["period_return"].astype(float)).cumprod().to_numpy()
    top.step(steps, equity, where="post", color="#1f5fa8", linewidth=1.4, label=label)
    if "hold_return" in timeline:
        hold = (1.0 + timeline["hold_return"].astype(float)).cumprod().to_numpy()
        top.step(steps, hold, where="post", color="#999999", linewidth=1.0, label="holding")
    if compare is not None:
        other_label, other = compare
        other_equity = (1.0 + other["period_return"].astype(float)).cumprod().to_numpy()
        top.step(
            other["step"].to_numpy(),
            other_equity,
            where="post",
            color="#d35400",
            linewidth=1.2,
            label=other_label,
        )
    versions = [None if pd.isna(v) else int(v) for v in timeline["active_version"]]
    for step, version in zip(steps, versions, strict=True):
        if version is None and step < steps[-1]:
            top.axvspan(step, step + 1, color="#e6e6e6", linewidth=0)
    marks = {
        ("activated", "promotion"): ("^", "#2e8b3a", "promotion"),
        ("deactivated", "rollback"): ("v", "#c0392b", "rollback"),
    }
    shown: set[str] = set()
    for step, value, events in zip(steps, equity, timeline["events"], strict=True):
        for event in events:
            mark = marks.get((event["action"], event["reason"]))
            if mark is None:
                continue
            marker, colour, label = mark
            top.scatter(
                [step],
                [value],
                marker=marker,
                color=colour,
                s=60,
                zorder=3,
                label=None if label in shown else label,
            )
            shown.add(label)
    if flip_step is not None:
        # Step flip_step is the first to publish flipped bars: they arrive after the step before.
        top.axvline(
            flip_step - 1, color="#8e44ad", linestyle="--", linewidth=1, label="signal flips"
        )
    top.axhline(1.0, color="grey", linewidth=0.8, linestyle=":", label="standing aside")
    top.set_ylabel("equity (net of fees)")
    top.set_title(title)
    top.legend(loc="best", fontsize=8)
    bottom.step(
        steps,
        [0 if v is None else v for v in versions],
        where="post",
        color="#555555",
        linewidth=1.2,
    )
    bottom.set_ylabel("active version\n(0: stand aside)", fontsize=8)
    bottom.set_xlabel("step")
    return _png(figure)


CHARTS_FOLDER = "charts"
DEFAULT_CHART_RETENTION_DAYS = 30
"""Days a chart file is kept after the last run that drew it (``prune_charts``)."""
_SUFFIXES = (".png", ".tmp")  # the only files prune_charts deletes: the ones save_chart writes
_MAX_FOLDER_NAME = 120


def chart_root() -> Path:
    """``$BRAIN_HOME/charts`` (see ``environment.brain_home``)."""
    return brain_home() / CHARTS_FOLDER


def symbol_folder(symbol: str) -> str:
    """A folder name for ``symbol``: percent-encoded (``BTC/USDT`` -> ``BTC%2FUSDT``), so that no
    two symbols share one and none leaves the charts folder; a long name keeps a readable head
    and a hash of the whole."""
    name = quote(symbol, safe="")
    if name.startswith("."):
        name = "%2E" + name[1:]  # never "." or "..", nor a hidden folder
    if len(name) > _MAX_FOLDER_NAME:
        digest = hashlib.sha256(symbol.encode()).hexdigest()[:16]
        name = f"{name[: _MAX_FOLDER_NAME - 17]}~{digest}"
    return name


def save_chart(
    png: bytes, symbol: str, asset: str, chart: str, *, root: Path | None = None
) -> Path:
    """``png`` as ``<root>/<symbol>/<asset>/<chart>-<sha256 prefix>.png`` (``root``: default
    :func:`chart_root`); returns its path. Named by content, so a chart drawn again is not
    written twice: the existing file's time is refreshed instead (retention counts from the
    last run that drew it). Written to a temporary file and renamed, so a reader never sees a
    half-written PNG."""
    digest = hashlib.sha256(png).hexdigest()[:16]
    folder = (root if root is not None else chart_root()) / symbol_folder(symbol) / asset
    path = folder / f"{chart}-{digest}.png"
    if path.is_file():
        os.utime(path)
        return path
    folder.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{chart}-", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(png)
        # mkstemp makes the file 0600; a UI or an operator under another account reads these.
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def write_chart(png: bytes, symbol: str, asset: str, chart: str) -> Path | None:
    """:func:`save_chart` under :func:`chart_root`, or None with a ``chart_not_written`` warning
    when the folder cannot be written: a chart is for reading, it must not stop a retrain."""
    try:
        return save_chart(png, symbol, asset, chart)
    except OSError as exc:
        log_event(
            "chart_not_written",
            logging.WARNING,
            symbol=symbol,
            asset=asset,
            chart=chart,
            error=str(exc),
        )
        return None


def prune_charts(
    root: Path | None = None,
    *,
    retention_days: int = DEFAULT_CHART_RETENTION_DAYS,
    symbols: Iterable[str] | None = None,
    now: float | None = None,
) -> dict[str, int]:
    """Delete chart files (``*.png``, and temporary files a killed write left) not drawn for
    ``retention_days`` (by modification time, against ``now``: default the current time) and
    every chart file of a symbol not in ``symbols``; then the folders left empty. An empty or
    missing ``symbols`` removes no symbol's folder for that reason alone (the age rule still
    applies). Other files are left alone. Returns counts: files deleted, files kept, symbol
    folders removed."""
    if isinstance(retention_days, bool) or not isinstance(retention_days, int):
        raise ValueError(f"retention_days must be an integer, got {type(retention_days).__name__}")
    if retention_days < 1:
        raise ValueError(f"retention_days must be at least 1, got {retention_days}")
    root = root if root is not None else chart_root()
    cutoff = (time.time() if now is None else now) - retention_days * 86400
    present = {symbol_folder(s) for s in symbols or ()}
    counts = {"chart_files_deleted": 0, "chart_files_kept": 0, "chart_symbol_folders_removed": 0}
    folders = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    for folder in folders:
        orphan = bool(present) and folder.name not in present
        for path in sorted(folder.rglob("*")):
            if not path.is_file() or path.is_symlink() or path.suffix not in _SUFFIXES:
                continue
            if orphan or path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)
                counts["chart_files_deleted"] += 1
            else:
                counts["chart_files_kept"] += 1
        for sub in sorted((p for p in folder.rglob("*") if p.is_dir()), reverse=True):
            _remove_if_empty(sub)
        if _remove_if_empty(folder):
            counts["chart_symbol_folders_removed"] += 1
    log_event("charts_pruned", folder=str(root), retention_days=retention_days, **counts)
    return counts


def _remove_if_empty(folder: Path) -> bool:
    try:
        folder.rmdir()
    except OSError:  # not empty (or already gone)
        return False
    return True
