"""
Fixtures for the backup tests: a fresh repository on a fake clock.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from recovery.backup import BackupRepository
from recovery.testing import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def repo(tmp_path: Path, clock: FakeClock) -> BackupRepository:
    """
    An initialised repository with small fixed-size chunks, so tests make
    many of them and can tell exactly where files are cut.
    """
    repository = BackupRepository(tmp_path / "repo", clock=clock, host="testhost")
    repository.init(chunk_size=64 * 1024, chunking="fixed")
    return repository
