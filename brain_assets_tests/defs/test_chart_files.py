"""Charts are PNG files under $BRAIN_HOME/charts, named by content and pruned by maintenance: the
event log names them and holds no image bytes."""

from __future__ import annotations

import os
import time
from pathlib import Path

import dagster as dg
import pytest

from brain_assets.defs.maintenance import maintenance_job
from brain_assets.defs.partitions import add_symbols
from brain_assets.plots import prune_charts, save_chart, symbol_folder, write_chart
from brain_assets_tests.dagster_helpers import run_assets

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# What image bytes in metadata look like: a data URI, or base64 of the PNG signature.
IMAGE_MARKERS = ("data:image", "iVBORw0KGgo")
DAY = 86400.0


def png_bytes(text: str = "x") -> bytes:
    """A small real PNG (matplotlib, as the assets draw them)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(1, 1))
    axis.set_title(text)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def chart_files(root: Path) -> dict[str, list[Path]]:
    """The PNG files under ``root`` by asset folder."""
    found: dict[str, list[Path]] = {}
    for path in sorted(root.rglob("*.png")):
        found.setdefault(path.parent.name, []).append(path)
    return found


def test_save_chart_writes_once_by_content(tmp_path: Path) -> None:
    png = png_bytes()
    first = save_chart(png, "BTC/USDT", "model_evaluation", "equity", root=tmp_path)
    assert first.parent == tmp_path / "BTC%2FUSDT" / "model_evaluation"
    assert first.read_bytes() == png
    assert first.stat().st_mode & 0o777 == 0o644  # readable by a UI under another account
    old = time.time() - 10 * DAY
    os.utime(first, (old, old))
    again = save_chart(png, "BTC/USDT", "model_evaluation", "equity", root=tmp_path)
    assert again == first
    assert first.stat().st_mtime > old + DAY  # drawn again: its retention starts over
    other = save_chart(png_bytes("y"), "BTC/USDT", "model_evaluation", "equity", root=tmp_path)
    assert other != first
    # No temporary file is left next to the charts.
    assert sorted(p.name for p in first.parent.iterdir()) == sorted([first.name, other.name])


def test_a_chart_that_cannot_be_written_is_left_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = tmp_path / "home"
    blocked.write_text("a file where the folder should be")
    monkeypatch.setenv("BRAIN_HOME", str(blocked))
    assert write_chart(b"png", "BTC/USDT", "model_evaluation", "equity") is None
    assert [r for r in caplog.records if getattr(r, "event", None) == "chart_not_written"]
    monkeypatch.setenv("BRAIN_HOME", str(tmp_path))
    written = write_chart(b"png", "BTC/USDT", "model_evaluation", "equity")
    assert written is not None and written.is_relative_to(tmp_path / "charts")


@pytest.mark.parametrize("symbol", ["BTC/USDT", "..", ".hidden", "a%2Fb", "é" * 64, "BTC-USDT"])
def test_symbol_folders_stay_inside_and_apart(tmp_path: Path, symbol: str) -> None:
    name = symbol_folder(symbol)
    assert "/" not in name and not name.startswith(".") and len(name) <= 120
    assert symbol_folder("BTC/USDT") != symbol_folder("BTC-USDT")
    assert symbol_folder("a/b") != symbol_folder("a%2Fb")
    path = save_chart(b"png", symbol, "data_quality", "data_health", root=tmp_path)
    assert path.resolve().is_relative_to(tmp_path.resolve())


def test_prune_deletes_old_and_orphaned_charts_and_keeps_fresh(tmp_path: Path) -> None:
    now = time.time()
    fresh = save_chart(b"1", "BTC/USDT", "model_evaluation", "equity", root=tmp_path)
    old = save_chart(b"2", "BTC/USDT", "model_evaluation", "equity", root=tmp_path)
    stale_temp = old.parent / ".equity-abc.tmp"
    stale_temp.write_bytes(b"half")
    notes = old.parent / "notes.txt"  # not a chart: left alone whatever its age
    notes.write_text("mine")
    gone = save_chart(b"3", "DOGE/USDT", "feature_importance", "importance", root=tmp_path)
    for path in (old, stale_temp, notes):
        os.utime(path, (now - 31 * DAY, now - 31 * DAY))

    counts = prune_charts(tmp_path, retention_days=30, symbols=["BTC/USDT"], now=now)

    assert counts == {
        "chart_files_deleted": 3,
        "chart_files_kept": 1,
        "chart_symbol_folders_removed": 1,
    }
    assert fresh.exists() and notes.exists()
    assert not old.exists() and not stale_temp.exists()
    assert not (tmp_path / symbol_folder("DOGE/USDT")).exists() and not gone.exists()
    # Without known symbols, only age counts; every empty folder goes.
    counts = prune_charts(tmp_path, retention_days=1, now=now + 2 * DAY)
    assert counts["chart_files_deleted"] == 1 and not fresh.exists()
    with pytest.raises(ValueError, match="retention_days"):
        prune_charts(tmp_path, retention_days=0)
    assert prune_charts(tmp_path / "missing")["chart_files_kept"] == 0


def test_maintenance_job_prunes_charts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, brain_dsn: str
) -> None:
    from brain_assets.defs.resources import BrainResource

    monkeypatch.setenv("BRAIN_HOME", str(tmp_path))
    root = tmp_path / "charts"
    kept = save_chart(b"1", "BTC/USDT", "model_evaluation", "equity", root=root)
    orphan = save_chart(b"2", "OLD/USDT", "model_evaluation", "equity", root=root)
    aged = save_chart(b"3", "BTC/USDT", "model_evaluation", "equity", root=root)
    os.utime(aged, (time.time() - 8 * DAY,) * 2)
    instance = dg.DagsterInstance.ephemeral()
    add_symbols(instance, ["BTC/USDT"])
    result = maintenance_job.execute_in_process(
        instance=instance,
        resources={"brain": BrainResource(dsn=brain_dsn)},
        run_config={"ops": {"prune_chart_files": {"config": {"retention_days": 7}}}},
    )
    assert result.success
    assert result.output_for_node("prune_chart_files") == {
        "chart_files_deleted": 2,
        "chart_files_kept": 1,
        "chart_symbol_folders_removed": 1,
    }
    assert kept.exists() and not orphan.exists() and not aged.exists()


def image_bytes_in_event_log(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    """Every marker of image bytes found in the run's whole event log, serialised as stored
    (materialisations, check evaluations, logs: all of it)."""
    found = []
    for entry in instance.all_logs(run_id):
        stored = dg.serialize_value(entry)
        found += [marker for marker in IMAGE_MARKERS if marker in stored]
    return found


def chart_paths_in_metadata(result: dg.ExecuteInProcessResult) -> list[Path]:
    paths = []
    for event in result.get_asset_materialization_events():
        metadata = event.event_specific_data.materialization.metadata  # type: ignore[union-attr]
        paths += [
            Path(value.path)
            for value in metadata.values()
            if isinstance(value, dg.PathMetadataValue)
        ]
    return paths


@pytest.mark.slow
def test_retrain_writes_chart_files_not_image_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, brain_dsn: str
) -> None:
    from PIL import Image

    monkeypatch.setenv("BRAIN_HOME", str(tmp_path))
    root = tmp_path / "charts"
    instance = dg.DagsterInstance.ephemeral()
    first = run_assets(instance, brain_dsn, ["BTC/USDT"])
    assert first.success
    assert image_bytes_in_event_log(instance, first.run_id) == []

    named = chart_paths_in_metadata(first)
    folders = {path.parent.name for path in named}
    assert folders == {"data_quality", "model_evaluation", "feature_importance"}
    for path in named:
        assert path.is_relative_to(root / "BTC%2FUSDT")
        assert path.read_bytes().startswith(PNG_SIGNATURE)
        with Image.open(path) as image:
            image.verify()
    # The scan reads the stored events that carry the metadata (it sees the paths).
    log = "".join(dg.serialize_value(entry) for entry in instance.all_logs(first.run_id))
    assert all(str(path) in log for path in named)
    before = chart_files(root)
    assert sorted(p for paths in before.values() for p in paths) == sorted(set(named))

    second = run_assets(instance, brain_dsn, ["BTC/USDT"])
    assert second.success
    assert image_bytes_in_event_log(instance, second.run_id) == []
    after = chart_files(root)
    # The same bars and models draw the same charts: nothing is written twice. The data-health
    # chart shows one more run, so it is a new file.
    for asset in ("model_evaluation", "feature_importance"):
        assert after[asset] == before[asset]
    assert len(after["data_quality"]) == len(before["data_quality"]) + 1
    contents = [p.read_bytes() for paths in after.values() for p in paths]
    assert len(set(contents)) == len(contents)
