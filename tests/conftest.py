"""Shared fixtures: the project's FMUs, built once per test session; the shared data folder."""
from __future__ import annotations

from pathlib import Path

import pytest

from twin import fmu_build

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def fmu_path():
    """fmu_path("Pump") -> Path of fmus/Pump.fmu, built first if missing or stale."""
    cache: dict[str, Path] = {}

    def get(model: str) -> Path:
        if model not in cache:
            cache[model] = fmu_build.ensure_built(model)
        return cache[model]

    return get


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"the shared data folder {SHARED_DATA} is missing: the tests read measured data from it")
    return SHARED_DATA
