"""Which language a customer wrote in, offline, for routing and for the agent's view.

Why ``py3langid`` (a maintained fork of Marco Lui's langid.py):

- **offline**: its naive-Bayes model (byte n-grams, some 140 languages) ships inside the wheel, so no
  text leaves the machine and nothing is downloaded at run time; customer mail is personal data;
- **small and fast**: the model (4.5 MB) loads in about half a second, once per process, and
  classifying the first 5,000 characters of a mail takes about a millisecond, so it runs inline
  while a mail is ingested;
- **restrictable**: a ``LanguageIdentifier`` can be narrowed to the languages a tenant supports,
  which makes short texts far more reliable than a choice among every language it knows;
- **calibrated**: with ``norm_probs`` it returns a probability, so a weak guess can be refused
  (``None``) instead of routing a "Danke!" to a Danish queue.

Alternatives we passed over: ``langdetect`` (a port of a Java library, non-deterministic unless
seeded, slower), ``fasttext`` (a compiled extension, and its model is a separate download),
``lingua`` (accurate, but much larger models and a slow start), a web API (personal data would
leave the tenant).

The module-level ``py3langid.classify``/``set_languages`` use one global identifier that other code
may share; we never touch it. We load our own base identifier and, per candidate set, use a shallow
copy narrowed with ``set_languages`` (which rebinds the copy's arrays and leaves the base alone).
"""

from __future__ import annotations

import copy
import re
import threading
from collections.abc import Sequence
from functools import lru_cache

from py3langid.langid import MODEL_FILE, LanguageIdentifier

# Below this many letters a guess is noise ("ok", "Danke!", a name and a phone number).
MIN_LETTERS = 20
# Probability the best language must reach. On one-sentence customer messages right guesses mostly
# score above 0.7 and Spanish, which the full model weighs against Galician and Extremaduran, still
# above 0.5; below it the model is choosing between neighbours ("Wann kommt mein Paket an?" gives
# de 0.35, nn 0.16, no 0.12), and no answer routes better than a wrong one.
MIN_CONFIDENCE = 0.5
# Language is settled in the first few paragraphs; the rest only costs time.
MAX_CHARS = 5000

_NOISE = re.compile(
    r"(?:https?://|www\.)\S+"  # links
    r"|\S+@\S+"  # addresses
    r"|[\d_]+"  # numbers, order references
)
_lock = threading.Lock()


@lru_cache(maxsize=1)
def _base_identifier() -> LanguageIdentifier:
    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


@lru_cache(maxsize=64)
def _identifier_for(languages: tuple[str, ...] | None) -> LanguageIdentifier:
    base = _base_identifier()
    if languages is None:
        return base
    narrowed = copy.copy(base)
    narrowed.set_languages(list(languages))
    return narrowed


def known_languages() -> frozenset[str]:
    """The ISO 639-1 codes the model can tell apart."""
    with _lock:
        return frozenset(_base_identifier().labels)


def _candidate_key(candidates: Sequence[str] | None) -> tuple[str, ...] | None:
    if candidates is None:
        return None
    known = known_languages()
    # "de-AT", "pt_BR" and "EN" all mean their primary language here.
    codes = {re.split(r"[-_]", code.strip().lower(), maxsplit=1)[0] for code in candidates if code.strip()}
    return tuple(sorted(codes & known))


def detect_language(text: str, candidates: Sequence[str] | None = None) -> str | None:
    """The ISO 639-1 code of ``text``'s language, or None when the text is too short or unclear.

    ``candidates`` restricts the choice (a tenant's languages); with one candidate that one is
    returned for any long enough text, and with none known to the model the answer is None.
    """
    cleaned = _NOISE.sub(" ", text[:MAX_CHARS])
    if sum(char.isalpha() for char in cleaned) < MIN_LETTERS:
        return None
    key = _candidate_key(candidates)
    if key is not None and not key:
        return None
    if key is not None and len(key) == 1:
        return key[0]
    with _lock:
        identifier = _identifier_for(key)
    language, confidence = identifier.classify(" ".join(cleaned.split()))
    if confidence < MIN_CONFIDENCE:
        return None
    return str(language)
