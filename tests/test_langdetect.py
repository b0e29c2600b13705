"""Language detection for routing: offline, restricted to a tenant's languages, silent when unsure."""

from __future__ import annotations

import py3langid
import pytest

from care.core import langdetect
from care.core.langdetect import detect_language


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Hello, I have not received my invoice for March yet. Could you send it again?", "en"),
        (
            "Guten Tag, ich habe meine Rechnung für März noch nicht erhalten. Bitte senden Sie sie erneut.",
            "de",
        ),
        ("Hola, todavía no he recibido mi factura de marzo. ¿Pueden enviarla de nuevo, por favor?", "es"),
        ("Bonjour, je n'ai pas encore reçu ma facture de mars. Pouvez-vous me la renvoyer ?", "fr"),
        ("Goedendag, ik heb mijn factuur van maart nog niet ontvangen. Kunt u die opnieuw sturen?", "nl"),
        ("Buongiorno, non ho ancora ricevuto la fattura di marzo. Potete inviarla di nuovo?", "it"),
    ],
)
def test_detects_the_language_of_a_customer_message(text, language):
    assert detect_language(text) == language


@pytest.mark.parametrize(
    "text", ["", "ok", "Danke!", "Order 4711", "john@example.com https://example.com/x 12345"]
)
def test_too_little_text_gives_no_answer(text):
    assert detect_language(text) is None


def test_links_addresses_and_numbers_do_not_count_as_words():
    noise = "https://example.com/track/ABCDEFGHIJKLMNOPQRSTUVWXYZ anna.schmidt@example.com 0049 30 1234567"
    assert detect_language(noise) is None
    assert detect_language(noise + " Wo bleibt mein Paket? Es sollte gestern ankommen.") == "de"


def test_candidates_restrict_the_choice():
    # Dutch and Afrikaans, Spanish and Galician: a tenant that serves nl and es gets one of those.
    assert detect_language("Waar is mijn pakket? Het zou gisteren komen.", ["de", "nl"]) == "nl"
    assert detect_language("¿Dónde está mi paquete? Debía llegar ayer.", ["es", "en"]) == "es"


def test_candidates_are_normalised_and_unknown_codes_ignored():
    text = "Guten Tag, wo bleibt meine Bestellung vom letzten Montag?"
    assert detect_language(text, ["DE-at", "en_GB", "xx"]) == "de"
    assert detect_language(text, ["xx", "yy"]) is None
    assert detect_language(text, ["fr"]) == "fr"  # the only choice for a long enough text


def test_a_text_between_two_languages_gives_no_answer():
    assert detect_language("Wann kommt mein Paket an? Please ok.") is None


def test_narrowing_leaves_the_base_and_the_global_identifier_alone():
    base = langdetect._base_identifier()
    classes_before, global_before = list(base.nb_classes), py3langid.langid.IDENTIFIER
    detect_language("Bonjour, je voudrais annuler ma commande, s'il vous plaît.", ["fr", "en"])
    assert list(base.nb_classes) == classes_before
    assert py3langid.langid.IDENTIFIER is global_before


def test_identifiers_are_cached_per_candidate_set():
    text = "Hallo, ich möchte meinen Vertrag kündigen, bitte bestätigen Sie das."
    detect_language(text, ["de", "en"])
    detect_language(text, ["en", "de", "DE"])
    key = langdetect._candidate_key(["de", "en"])
    assert langdetect._identifier_for(key) is langdetect._identifier_for(
        langdetect._candidate_key(["en", "de"])
    )
