"""A Python environment without the ``lstm`` extra, made from this one in a second: a new virtual
environment whose site-packages is this environment's seen through a folder of symbolic links
that leaves out TensorFlow and Keras (packages and metadata). There ``import tensorflow`` fails
and ``importlib.util.find_spec("tensorflow")`` is None, exactly as on a core install, while
everything else is the tested versions (nothing is downloaded)."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

HIDDEN = frozenset({"tensorflow", "tensorflow_cpu", "keras"})
"""Import names and distribution names (as their folders spell them) that the lstm extra adds."""


def lstm_extra_entry(name: str) -> bool:
    """``tensorflow/``, ``tensorflow_cpu-2.21.0.dist-info``, ``keras-3.15.1.dist-info``, ..."""
    return name.split("-")[0].lower() in HIDDEN


def site_without_lstm(folder: Path) -> Path:
    """``folder`` filled with links to every entry of this environment's site-packages but the
    lstm extra's (and the ``.pth`` files, which are only read in a site folder: the editable
    install of the checkout among them)."""
    folder.mkdir(parents=True)
    site = Path(sysconfig.get_paths()["purelib"])
    for entry in site.iterdir():
        if entry.suffix != ".pth" and not lstm_extra_entry(entry.name):
            (folder / entry.name).symlink_to(entry)
    return folder


def venv_seeing(venv: Path, *paths: Path) -> Path:
    """A new virtual environment (no pip) whose ``sys.path`` ends with ``paths``; its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(purelib, "dependencies.pth").write_text("".join(f"{path}\n" for path in paths))
    return python
