"""constraints.txt pins every dependency of pyproject (core and run-time extras) at a version
its specifier allows, and says how it was produced."""

from __future__ import annotations

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from brain_assets_tests.constraints import INSTALLERS, applies, runtime_requirements
from brain_assets_tests.paths import REPO

CONSTRAINTS = REPO / "constraints.txt"


def pins() -> dict[str, Version]:
    pinned = {}
    for raw in CONSTRAINTS.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, _, version = line.partition("==")
        assert version, f"constraints.txt: {raw!r} is not name==version"
        pinned[canonicalize_name(name)] = Version(version.split(";")[0].strip())
    return pinned


def test_every_dependency_is_pinned_within_its_specifier() -> None:
    pinned = pins()
    extras, requirements = runtime_requirements()
    assert {"exchange", "lstm", "alerts"} <= set(extras)
    checked = []
    for requirement in requirements:
        # tensorflow (not tensorflow-cpu) is the lstm extra's choice off Linux x86_64, where
        # the file was produced: its marker does not hold here, so it is not pinned.
        if not applies(requirement, ("", *extras)):
            continue
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{requirement} is not pinned in constraints.txt"
        assert requirement.specifier.contains(pinned[name], prereleases=True), (
            f"constraints.txt pins {name}=={pinned[name]}, outside pyproject's {requirement}"
        )
        checked.append(name)
    assert {"dagster", "keras", "apprise", "ccxt", "pydantic", "psutil"} <= set(checked)
    assert {"tensorflow", "tensorflow-cpu"} & set(checked)


def test_the_file_says_how_it_was_made() -> None:
    text = CONSTRAINTS.read_text()
    assert "pip freeze --exclude-editable" in text
    assert "make constraints" in text
    assert not set(pins()) & INSTALLERS
    assert "constraints:" in (REPO / "Makefile").read_text()
    # The image installs with it.
    assert "-c /tmp/constraints.txt" in (REPO / "Dockerfile").read_text()


def test_no_core_dependency_is_tensorflow() -> None:
    from brain_assets_tests.constraints import project

    core = [Requirement(line) for line in project()["dependencies"]]
    assert not {canonicalize_name(r.name) for r in core} & {"tensorflow", "tensorflow-cpu", "keras"}
