"""The package as pip builds it: licence metadata (SPDX expression, licence files, NOTICE), one
version source, and no setuptools warnings while building."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

import rarebird

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The wheel built from a copy of the project (the work tree stays clean), and pip's
    verbose output of the build."""
    work = tmp_path_factory.mktemp("pkg")
    for name in ("pyproject.toml", "README.md", "LICENSE", "NOTICE", "CHANGELOG.md"):
        shutil.copy(ROOT / name, work / name)
    shutil.copytree(ROOT / "src", work / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-v",
         "-w", str(work / "dist"), str(work)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (built,) = (work / "dist").glob("rarebird-*.whl")
    return built, proc.stdout + proc.stderr


def test_building_prints_no_setuptools_warning(wheel: tuple[Path, str]) -> None:
    _, log = wheel
    # setuptools frames its deprecation warnings in lines of "!!" and names them
    assert "Deprecat" not in log
    assert not re.search(r"^\s*!!\s*$", log, re.M)


def test_metadata_names_both_licences_and_ships_their_texts(wheel: tuple[Path, str]) -> None:
    built, _ = wheel
    version = rarebird.__version__
    with zipfile.ZipFile(built) as zf:
        meta = zf.read(f"rarebird-{version}.dist-info/METADATA").decode()
        names = set(zf.namelist())
        notice = zf.read(f"rarebird-{version}.dist-info/licenses/NOTICE").decode()
    assert "License-Expression: Apache-2.0 AND Elastic-2.0" in meta
    assert f"Version: {version}" in meta
    assert "Classifier: Topic :: Security" in meta
    assert "Requires-Dist: rich" in meta
    assert meta.count("Project-URL: ") == 2
    for licence in ("LICENSE", "NOTICE",
                    "src/rarebird/definitions/data/LICENSE-Elastic-License-2.0.txt"):  # fmt: skip
        assert f"rarebird-{version}.dist-info/licenses/{licence}" in names
    assert "Elastic License 2.0" in notice
    assert "Apache License, Version 2.0" in notice
    assert "Apache License" in (ROOT / "LICENSE").read_text()


def test_the_version_is_written_once() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "version" not in project
    assert project["dynamic"] == ["version"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", rarebird.__version__)
    proc = subprocess.run([sys.executable, "-m", "rarebird", "--version"], capture_output=True,
                          text=True, check=True)  # fmt: skip
    assert proc.stdout.strip() == f"rarebird, version {rarebird.__version__}"
    assert "## Unreleased" in (ROOT / "CHANGELOG.md").read_text()
