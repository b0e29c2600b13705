"""Where the shared social samples are: ../shared/corpus/social beside the repository."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

SOCIAL = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpus" / "social"


def corpus_file(relative: str) -> Path:
    """The sample at ``relative`` inside the social corpus; skips the test if it is absent."""
    path = SOCIAL / relative
    if not path.is_file():
        pytest.skip(f"social corpus sample missing: {path}")
    return path


def corpus_json(relative: str) -> Any:
    return json.loads(corpus_file(relative).read_bytes())


def corpus_files(directory: str, pattern: str = "*.json") -> list[Path]:
    """Every sample in ``directory`` (sorted), or [] when the corpus is absent."""
    folder = SOCIAL / directory
    return sorted(folder.glob(pattern)) if folder.is_dir() else []
