"""Feature importance: cost against the stability of the top-20 ranking, per model type.

    .venv/bin/python bench/importance_tradeoff.py [--symbols 3] [--bars 3000] [--seeds 3]

For each symbol (the retrain's synthetic source at the demo's size: 3,000 hourly bars), the
retrain's four model types are trained as the retrain trains them and analysed on the test segment
as the retrain analyses them (``pipeline.importance.analyze_model``). For each model type and
method, a high-sample reference is computed once:

* permutation: 30 repeats (10 for the LSTM) on every analysed row;
* SHAP: every analysed row (tree and linear explainers: exact); the LSTM's GradientExplainer on
  every test window with 100 background draws each.

Each candidate setting is then run with ``--seeds`` seeds other than the reference's, and scored
by the Spearman correlation of its importances with the reference's over the reference's top 20
features (by |importance|, as ``get_top_features`` ranks them). Reported: median seconds and the
median and worst correlation over symbols x seeds. ``analyzer.EFFORT_BY_MODEL_TYPE`` and the LSTM's
``shap_rows`` / ``shap_samples`` are the cheapest candidates whose median correlation is at least
0.9. Results go to bench/results/importance_tradeoff.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scipy.stats import spearmanr

from brain_assets.importance.analyzer import FeatureImportanceAnalyzer, effort_for
from brain_assets.market_data.sources import make_source
from brain_assets.pipeline.dataset import make_dataset, split_columns
from brain_assets.pipeline.importance import analyze_model
from brain_assets.pipeline.settings import LSTMSettings, RetrainSettings
from brain_assets.pipeline.training import split_for, train_symbol
from brain_assets.training.serialization import deserialize_model

RESULTS = Path(__file__).parent / "results" / "importance_tradeoff.json"
TOP_N = 20
REPEATS = (1, 2, 3, 5, 10)
TREE_SHAP_ROWS = (25, 50, 100, 200)
LSTM_SHAP = ((100, 100), (200, 25), (100, 25), (50, 50), (200, 10), (100, 10))
# shap's own GradientExplainer at the default size, which the retrain used before its batched
# expected gradients: the same estimator, so its rho shows the replacement ranks alike.
SHAP_LIBRARY = (100, 10)
REFERENCE_REPEATS = {"lstm": 10}
REFERENCE_LSTM_SHAP = (10_000, 100)  # every test window, 100 draws each


def top_correlation(reference: dict[str, float], candidate: dict[str, float]) -> float:
    top = sorted(reference, key=lambda name: -abs(reference[name]))[:TOP_N]
    rho = spearmanr([abs(reference[n]) for n in top], [abs(candidate[n]) for n in top])[0]
    return float(rho)


def run(
    model: Any,
    model_type: str,
    X: Any,
    y: Any,
    rows: slice,
    settings: RetrainSettings,
    method: str,
    seed: int,
    *,
    repeats: int = 1,
    shap_rows: int | None = None,
) -> tuple[dict[str, float], float]:
    analyzer = FeatureImportanceAnalyzer(
        sample_size=settings.importance_sample,
        seed=seed,
        permutation_repeats=repeats,
        shap_rows=shap_rows,
    )
    chosen = replace(settings, importance_methods=(method,), seed=seed)
    started = time.perf_counter()
    analysis = analyze_model(analyzer, "S", model, X, y, chosen, rows=rows)
    seconds = time.perf_counter() - started
    if method not in analysis.tables:
        raise RuntimeError(f"{model_type} {method} failed: {analysis.failures}")
    table = analysis.tables[method]
    return dict(zip(table["feature"], table["importance"], strict=True)), seconds


def shap_library_run(
    model: Any, X: Any, rows: slice, settings: RetrainSettings, seed: int
) -> tuple[dict[str, float], float]:
    """The LSTM's SHAP as the retrain computed it before: shap.GradientExplainer, one explained
    window per eager gradient call (batch_size 1000)."""
    import numpy as np
    import shap

    from brain_assets.lstm.network import import_keras
    from brain_assets.pipeline.lstm_model import shap_windows
    from brain_assets.training.models import single_threaded

    explained_rows, samples = SHAP_LIBRARY
    # The rows analyze_model explains: the test segment's latest importance_sample rows.
    start = max(rows.start, rows.stop - settings.importance_sample)
    history = X.iloc[start - (model.sequence_length - 1) : rows.stop]
    started = time.perf_counter()
    with single_threaded():
        explained, background = shap_windows(model, history, explained_rows, seed)
        network = model.inference_model
        prediction_only = import_keras().Model(network.inputs, network.outputs[0])
        explainer = shap.GradientExplainer(prediction_only, background, batch_size=1000)
        values = explainer.shap_values(explained, nsamples=samples, rseed=seed)
    per_input = np.asarray(values, dtype=float).reshape(len(explained), model.sequence_length, -1)
    importances = np.abs(per_input.sum(axis=1)).mean(axis=0)
    seconds = time.perf_counter() - started
    return dict(zip(map(str, X.columns), importances.tolist(), strict=True)), seconds


def candidates(model_type: str, method: str, settings: RetrainSettings) -> list[dict[str, Any]]:
    if method == "permutation":
        return [{"repeats": r} for r in REPEATS]
    if model_type == "lstm":
        return [{"lstm_shap": pair} for pair in LSTM_SHAP] + [
            {"lstm_shap": list(SHAP_LIBRARY), "explainer": "shap.GradientExplainer"}
        ]
    if model_type == "ridge":
        return [{"shap_rows": None}]
    return [{"shap_rows": n} for n in TREE_SHAP_ROWS] + [{"shap_rows": None}]


def with_lstm_shap(settings: RetrainSettings, pair: tuple[int, int]) -> RetrainSettings:
    rows, samples = pair
    config = replace(settings.lstm_config, shap_rows=rows, shap_samples=samples)
    return replace(settings, lstm_config=config)


def one_symbol(index: int, bars: int, seeds: int) -> list[dict[str, Any]]:
    settings = RetrainSettings(include_lstm=True, lstm_config=LSTMSettings())
    frame = make_source("synthetic", seed=index, n_bars=bars, bar="1h").load(f"S{index}/USDT").frame
    table = make_dataset(frame, settings.horizon)
    artifacts = train_symbol(f"S{index}/USDT", table, settings)
    split = split_for(table, settings)
    X, y, _ = split_columns(table)
    rows_out = []
    for artifact in artifacts:
        kind = artifact.model_type
        model = deserialize_model(artifact.artifact, artifact.artifact_format)
        for method in ("permutation", "shap"):
            if method == "permutation":
                reference, ref_s = run(
                    model, kind, X, y, split.test, settings, method, 0,
                    repeats=REFERENCE_REPEATS.get(kind, 30),
                )  # fmt: skip
            else:
                ref_settings = with_lstm_shap(settings, REFERENCE_LSTM_SHAP)
                reference, ref_s = run(model, kind, X, y, split.test, ref_settings, method, 0)
            for candidate in candidates(kind, method, settings):
                for seed in range(1, seeds + 1):
                    chosen = settings
                    if "lstm_shap" in candidate:
                        chosen = with_lstm_shap(settings, candidate["lstm_shap"])
                    if "explainer" in candidate:
                        values, seconds = shap_library_run(model, X, split.test, settings, seed)
                    else:
                        values, seconds = run(
                            model, kind, X, y, split.test, chosen, method, seed,
                            repeats=candidate.get("repeats", 1),
                            shap_rows=candidate.get("shap_rows"),
                        )  # fmt: skip
                    rows_out.append(
                        {
                            "symbol": index,
                            "model_type": kind,
                            "method": method,
                            "candidate": json.dumps(candidate),
                            "seed": seed,
                            "seconds": seconds,
                            "reference_seconds": ref_s,
                            "rho_top20": top_correlation(reference, values),
                        }
                    )
        print(f"symbol {index}: {kind} done", flush=True)
    return rows_out


def current_setting(model_type: str, method: str) -> str:
    effort = effort_for(model_type)
    if method == "permutation":
        return json.dumps({"repeats": effort.permutation_repeats})
    if model_type == "lstm":
        config = LSTMSettings()
        return json.dumps({"lstm_shap": [config.shap_rows, config.shap_samples]})
    return json.dumps({"shap_rows": effort.shap_rows})


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["model_type"], row["method"], row["candidate"]), []).append(row)
    summary = []
    for (kind, method, candidate), group in groups.items():
        rhos = [r["rho_top20"] for r in group]
        summary.append(
            {
                "model_type": kind,
                "method": method,
                "candidate": candidate,
                "seconds_median": statistics.median(r["seconds"] for r in group),
                "rho_median": statistics.median(rhos),
                "rho_min": min(rhos),
                "samples": len(group),
                "reference_seconds_median": statistics.median(
                    r["reference_seconds"] for r in group
                ),
            }
        )
    return summary


def print_summary(summary: list[dict[str, Any]]) -> None:
    """The table, the current defaults (``analyzer.EFFORT_BY_MODEL_TYPE``, ``LSTMSettings``)
    marked with a star."""
    print(f"{'model':24} {'method':12} {'setting':28} {'seconds':>8} {'rho med':>8} {'rho min':>8}")
    for entry in summary:
        kind, method, candidate = entry["model_type"], entry["method"], entry["candidate"]
        mark = "*" if candidate == current_setting(kind, method) else " "
        print(
            f"{kind:24} {method:12} {mark}{candidate:27} {entry['seconds_median']:8.3f} "
            f"{entry['rho_median']:8.3f} {entry['rho_min']:8.3f}"
        )


MODEL_NAMES = {
    "ridge": "ridge",
    "random_forest": "random forest",
    "hist_gradient_boosting": "gradient boosting",
    "lstm": "LSTM",
}
SHAP_NAMES = {"ridge": "SHAP (linear)", "lstm": "SHAP (gradient)"}


def setting_label(candidate: dict[str, Any]) -> str:
    if "repeats" in candidate:
        return str(candidate["repeats"])
    if "lstm_shap" in candidate:
        rows, draws = candidate["lstm_shap"]
        label = f"{rows} x {draws}"
        return f"{label} ({candidate['explainer']})" if "explainer" in candidate else label
    return "all" if candidate["shap_rows"] is None else str(candidate["shap_rows"])


def markdown_table(summary: list[dict[str, Any]]) -> str:
    """The README's table: one line per model type and method, the default in bold."""
    lines = [
        "| model | method | setting | seconds | rho (median) | rho (worst) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for entry in summary:
        groups.setdefault((entry["model_type"], entry["method"]), []).append(entry)
    for (kind, method), entries in groups.items():
        current = current_setting(kind, method)
        labels, seconds, rhos, worst = [], [], [], ""
        for entry in entries:
            bold = "**" if entry["candidate"] == current else ""
            labels.append(f"{bold}{setting_label(json.loads(entry['candidate']))}{bold}")
            seconds.append(f"{bold}{entry['seconds_median']:.2f}{bold}")
            rhos.append(f"{bold}{entry['rho_median']:.2f}{bold}")
            if bold:
                worst = f"**{entry['rho_min']:.2f}**"
        unit = "shuffles" if method == "permutation" else "rows"
        if kind == "lstm" and method == "shap":
            unit = "windows x draws"
        name = "permutation" if method == "permutation" else SHAP_NAMES.get(kind, "SHAP (tree)")
        lines.append(
            f"| {MODEL_NAMES.get(kind, kind)} | {name} | {' / '.join(labels)} {unit} | "
            f"{' / '.join(seconds)} | {' / '.join(rhos)} | {worst} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--symbols", type=int, default=3)
    parser.add_argument("--bars", type=int, default=3000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--report", action="store_true", help="print the saved results and exit")
    parser.add_argument(
        "--markdown", action="store_true", help="with --report: the README's table instead"
    )
    args = parser.parse_args()
    if args.report:
        saved = json.loads(RESULTS.read_text())
        print(f"{saved['date']}, {saved['machine']}, {saved['arguments']}")
        summary = summarise(saved["runs"])
        if args.markdown:
            print(markdown_table(summary))
        else:
            print_summary(summary)
        return
    rows: list[dict[str, Any]] = []
    for index in range(1, args.symbols + 1):
        rows.extend(one_symbol(index, args.bars, args.seeds))
    summary = summarise(rows)
    print_summary(summary)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": f"{os.cpu_count()} cores",
                "arguments": vars(args),
                "summary": summary,
                "runs": rows,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
