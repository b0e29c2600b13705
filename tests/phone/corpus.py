"""Where the shared telephony samples are: ../shared/corpus/telephony beside the repository."""

from __future__ import annotations

from pathlib import Path

import pytest

TELEPHONY = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpus" / "telephony"


def corpus_file(relative: str) -> Path:
    """The sample at ``relative`` inside the telephony corpus; skips the test if it is absent."""
    path = TELEPHONY / relative
    if not path.is_file():
        pytest.skip(f"telephony corpus sample missing: {path}")
    return path
