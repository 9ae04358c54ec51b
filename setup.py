"""Builds the run-time files kept at the repository's top level into the wheel.

The repository keeps ``sql/`` (the migrations), ``dagster.yaml`` and ``workspace.yaml`` at its top
level, where people look for them. An installed package must carry them too: ``build_py`` copies
them into ``brain_assets/_bundled/``, where ``brain_assets.bundled`` finds them. An editable
install reads them from the checkout instead. Everything else is configured in pyproject.toml.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
BUNDLED = ("sql", "dagster.yaml", "workspace.yaml")


class BuildPyWithBundle(build_py):
    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "brain_assets" / "_bundled"
        target.mkdir(parents=True, exist_ok=True)
        for name in BUNDLED:
            source = ROOT / name
            if source.is_dir():
                shutil.copytree(source, target / name, dirs_exist_ok=True)
            else:
                shutil.copy2(source, target / name)


setup(cmdclass={"build_py": BuildPyWithBundle})
