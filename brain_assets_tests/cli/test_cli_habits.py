"""The habits of a command-line tool: --version, a description and examples in every --help,
--json wherever a table is printed, rich tables and bars on a terminal only, completion."""

from __future__ import annotations

import argparse
import importlib.metadata
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

import brain_assets
from brain_assets.cli import completion, output, progress
from brain_assets.cli.main import build_parser, main, version

NO_TABLE = {"demo", "dev", "psql", "completion"}
"""Leaf commands that print no table, so need no --json (a command path, space-separated)."""
SHELL_OPERATORS = {">", ">>", "<", "|", "&&", ";"}


def commands() -> list[completion.Command]:
    """Every subcommand of the tree, at any depth (the root left out)."""
    return [command for command in completion.walk(build_parser()) if command.path]


def _examples(epilog: str) -> list[str]:
    lines = epilog.splitlines()
    start = lines.index("example:") + 1
    examples = []
    for line in lines[start:]:
        if not line.startswith("  "):
            break
        examples.append(line.strip())
    return examples


def test_version_names_the_installed_distribution(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out == f"brain {importlib.metadata.version('brain-assets')}\n"


def test_version_falls_back_to_the_package_when_not_installed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def not_installed(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    assert version() == brain_assets.__version__


def test_every_subcommand_has_a_description_and_examples_that_parse() -> None:
    parser = build_parser()
    problems = []
    for command in commands():
        sub = command.parser
        if not (sub.description or "").strip():
            problems.append(f"brain {command.path}: no description")
        if "example:" not in (sub.epilog or "").splitlines():
            problems.append(f"brain {command.path}: no 'example:' epilog")
            continue
        if sub.formatter_class is not argparse.RawDescriptionHelpFormatter:
            problems.append(f"brain {command.path}: the epilog's layout would be re-wrapped")
        examples = _examples(sub.epilog or "")
        if not any(line.startswith(f"brain {command.path}") for line in examples):
            problems.append(f"brain {command.path}: no example of itself")
        for line in examples:
            words = shlex.split(line, comments=True)
            if words[0] != "brain":
                continue  # a shell line around it, e.g. source <(brain completion zsh)
            cut = next((i for i, w in enumerate(words) if w in SHELL_OPERATORS), len(words))
            try:
                parser.parse_args(words[1:cut])
            except SystemExit:
                problems.append(f"brain {command.path}: example does not parse: {line}")
    assert problems == []


def test_every_command_that_prints_a_table_takes_json() -> None:
    leaves = [command for command in commands() if not completion.subparsers(command.parser)]
    missing = [c.path for c in leaves if c.path not in NO_TABLE and "--json" not in c.options]
    assert missing == []


def test_tables_are_plain_through_a_pipe_and_rich_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows: list[dict[str, object]] = [
        {"symbol": "BTC/USDT", "sharpe": 1.25},
        {"symbol": "ETH/USDT", "sharpe": None},
    ]
    assert output.table(rows, ["symbol", "sharpe"]).splitlines() == [
        "symbol    sharpe",
        "--------  ------",
        "BTC/USDT  1.25  ",
        "ETH/USDT  -     ",
    ]
    monkeypatch.setattr(output, "stdout_is_terminal", lambda: True)
    monkeypatch.setenv("NO_COLOR", "1")
    drawn = output.table(rows, ["symbol", "sharpe"])
    assert "─" in drawn
    assert [line.split() for line in drawn.splitlines() if "USDT" in line] == [
        ["BTC/USDT", "1.25"],
        ["ETH/USDT", "-"],
    ]


def test_no_progress_bar_unless_stderr_is_a_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with progress.progress_bar("work", 2) as bar:
        assert bar is None
    monkeypatch.setattr(progress, "stderr_is_terminal", lambda: True)
    with progress.progress_bar("work", 2) as bar:
        assert bar is not None
        bar.note("BTC/USDT: features")
        bar.advance("BTC/USDT done")
        bar.finish()
    assert "work" in capsys.readouterr().err


def _bash_complete(script: Path, line: str) -> list[str]:
    """What the bash script offers for ``line`` (a trailing space: a new, empty word)."""
    simulate = (
        'source "$1"; read -ra COMP_WORDS <<< "$2"; [[ "$2" == *" " ]] && COMP_WORDS+=(""); '
        'COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _brain; printf "%s\\n" "${COMPREPLY[@]}"'
    )
    done = subprocess.run(
        ["bash", "-c", simulate, "_", str(script), line],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.split()


def test_bash_completion_completes_commands_actions_options_and_choices(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["completion", "bash"]) == 0
    script = tmp_path / "brain.bash"
    script.write_text(capsys.readouterr().out)
    assert {"retrain", "replay"} <= set(_bash_complete(script, "brain re"))
    assert "verify" not in _bash_complete(script, "brain re")
    assert {"list", "retry"} <= set(_bash_complete(script, "brain alerts "))
    assert _bash_complete(script, "brain alerts li") == ["list"]
    assert "--json" in _bash_complete(script, "brain -v alerts list --")
    assert "files" in _bash_complete(script, "brain retrain --source ")
    assert _bash_complete(script, "brain completion ") == ["bash", "zsh"]


def test_zsh_completion_is_valid_zsh(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["completion", "zsh"]) == 0
    script = tmp_path / "_brain"
    script.write_text(capsys.readouterr().out)
    assert script.read_text().startswith("#compdef brain\n")
    zsh = shutil.which("zsh")
    if zsh is None:
        pytest.skip("zsh is not installed here: the script's syntax cannot be checked")
    subprocess.run([zsh, "-n", str(script)], check=True)


def test_completion_lists_every_command_path() -> None:
    script = completion.script(build_parser(), "bash")
    for command in commands():
        assert f'"{command.path}")' in script


def _staged_run(symbol: str, run_id: str, tags: dict[str, str]) -> dict[str, object]:
    """A pool task in the worker: two stages' progress events, as daily_retrain logs them."""
    from brain_assets.events import log_event

    for stage in ("features", "train"):
        log_event("retrain_progress", stage=stage, symbol=symbol, done=1, total=1, seconds=0.0)
    return {"symbol": symbol, "run_id": run_id, "success": symbol != "BAD/USDT", "failures": []}


def test_retrain_progress_bar_hears_the_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from brain_assets.cli import retrain_commands, worker_pool

    monkeypatch.setattr(progress, "stderr_is_terminal", lambda: True)
    monkeypatch.setattr(worker_pool, "run_retries", lambda: 0)
    notes: list[str] = []
    monkeypatch.setattr(progress.Bar, "note", lambda self, note: notes.append(note))
    results = retrain_commands.retrain_each(
        ["BTC/USDT", "BAD/USDT"],
        _staged_run,
        workers=1,
        plain_start=retrain_commands._demo_worker_start,
        initargs=(0.0, str(tmp_path / "native.log")),
        command="retrain",
    )
    assert [(r["symbol"], r["success"]) for r in results] == [
        ("BTC/USDT", True),
        ("BAD/USDT", False),
    ]
    captured = capsys.readouterr()
    assert "2/2" in captured.err
    assert captured.out == ""  # the workers printed no progress lines
    assert "BTC/USDT: features" in notes
