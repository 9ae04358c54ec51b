"""Writes constraints.txt: this environment's versions of what the wheel and its run-time extras
need, so that an image or a new machine installs the versions the test suite passed with.

    make constraints
    .venv/bin/python -m brain_assets_tests.constraints > constraints.txt   # the same

The requirements are pyproject's dependencies and its run-time extras (every extra but ``test``),
followed through the installed distributions' own requirements; the versions are the lines
``pip freeze --exclude-editable`` prints for them. A requirement whose marker does not hold here
(``tensorflow`` outside Linux x86_64, say) is not installed, and so not pinned.
"""

from __future__ import annotations

import platform
import subprocess
import sys
import tomllib
from collections.abc import Iterable
from importlib import metadata
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from brain_assets_tests.paths import REPO

DEV_EXTRAS = frozenset({"test"})
"""Extras for working on the project, not for running it: not pinned."""
INSTALLERS = frozenset({"pip", "setuptools", "wheel"})
"""Required at run time by a few packages (tensorboard wants setuptools), but pip freeze leaves
them out and the image's own are fine: not pinned."""
HEADER = """\
# Versions of a tested environment for brain-assets and its run-time extras
# ({extras}).
# Produced from the .venv that passed `make test`: `pip freeze --exclude-editable`, filtered to
# pyproject's dependencies and the extras above, followed through their own requirements.
# Regenerate:  make constraints
#   (= .venv/bin/python -m brain_assets_tests.constraints > constraints.txt)
# Use:  pip install -c constraints.txt 'brain-assets[exchange,lstm]'
# Produced on {platform} (Python {python}); a requirement whose marker does not hold there
# (tensorflow instead of tensorflow-cpu outside Linux x86_64) is not pinned, nor are pip,
# setuptools and wheel.
"""


def project() -> dict[str, Any]:
    """The ``[project]`` table of pyproject.toml."""
    document: dict[str, Any] = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return document


def runtime_requirements() -> tuple[list[str], list[Requirement]]:
    """The run-time extras' names, and every requirement of the core and of those extras."""
    meta = project()
    optional: dict[str, list[str]] = meta["optional-dependencies"]
    extras = sorted(name for name in optional if name not in DEV_EXTRAS)
    lines = [*meta["dependencies"], *(line for extra in extras for line in optional[extra])]
    return extras, [Requirement(line) for line in lines]


def applies(requirement: Requirement, extras: Iterable[str] = ("",)) -> bool:
    """Whether ``requirement``'s marker holds in this environment for any of ``extras``."""
    if requirement.marker is None:
        return True
    return any(requirement.marker.evaluate({"extra": extra}) for extra in extras)


def closure(requirements: Iterable[Requirement]) -> set[str]:
    """Canonical names of the installed distributions ``requirements`` need, transitively."""
    seen: set[str] = set()
    todo = [(r, ("",)) for r in requirements]
    wanted_extras: dict[str, set[str]] = {}
    while todo:
        requirement, extras = todo.pop()
        if not applies(requirement, extras):
            continue
        name = canonicalize_name(requirement.name)
        new_extras = set(requirement.extras) - wanted_extras.get(name, set())
        if name in seen and not new_extras:
            continue
        seen.add(name)
        wanted_extras.setdefault(name, set()).update(requirement.extras)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        active = ("", *sorted(wanted_extras[name]))
        todo += [(Requirement(line), active) for line in dist.requires or ()]
    return seen


def freeze() -> dict[str, str]:
    """``pip freeze --exclude-editable`` of this interpreter, by canonical name."""
    lines = subprocess.run(
        [sys.executable, "-m", "pip", "freeze", "--exclude-editable"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    pins = {}
    for line in lines:
        if "==" in line and not line.startswith("#"):
            pins[canonicalize_name(line.split("==", 1)[0])] = line.strip()
    return pins


def render() -> str:
    extras, requirements = runtime_requirements()
    needed = closure(requirements) - {"brain-assets"} - INSTALLERS
    pins = freeze()
    missing = sorted(needed - set(pins))
    installed = {canonicalize_name(d.metadata["Name"]) for d in metadata.distributions()}
    if unpinnable := [name for name in missing if name in installed]:
        raise SystemExit(f"installed but not frozen as name==version: {', '.join(unpinnable)}")
    header = HEADER.format(
        extras=", ".join(extras),
        platform=f"{sys.platform} {platform.machine()}",
        python=".".join(map(str, sys.version_info[:3])),
    )
    return header + "".join(f"{pins[name]}\n" for name in sorted(needed & set(pins)))


def main() -> int:
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
