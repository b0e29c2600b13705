"""What the timeline shows of a mail: the new text, without quoted history and signatures.

Cases are written the way the common clients write them, in each language Care's tenants use.
"""

from __future__ import annotations

import time

import pytest

from care.connectors.email.reply import html_to_text, visible_part

REPLY = "Die Rechnung 4711 ist immer noch offen.\nBitte prüfen Sie das."

QUOTED = """
> Vielen Dank für Ihre Nachricht.
> Wir melden uns in Kürze.
>
> Ihr Care-Team
"""

CASES = [
    # --- English ---------------------------------------------------------------------------
    pytest.param(
        "My parcel has still not arrived.\n\n"
        "On Mon, 3 Mar 2025 at 10:15, Care Support <support@care.test> wrote:\n\n"
        "> Your parcel is on its way.\n> Kind regards",
        "My parcel has still not arrived.",
        id="en-gmail-wrote",
    ),
    pytest.param(
        "Please cancel the order.\n\n"
        "On Mar 3, 2025, at 10:15 AM, Care Support\n<support@care.test> wrote:\n\n> Hello",
        "Please cancel the order.",
        id="en-apple-wrote-wrapped",
    ),
    pytest.param(
        "The invoice is wrong.\n\n"
        "From: Care Support <support@care.test>\n"
        "Sent: Monday, March 3, 2025 10:15 AM\n"
        "To: John Smith <john@example.com>\n"
        "Subject: RE: Invoice 4711\n\n"
        "Dear John,\nplease find your invoice attached.",
        "The invoice is wrong.",
        id="en-outlook-block",
    ),
    pytest.param(
        "Still waiting.\n\n-----Original Message-----\nFrom: Care Support\nSent: today\n\nHello",
        "Still waiting.",
        id="en-original-message",
    ),
    pytest.param(
        "Thanks, but the app still crashes when I log in.\nIt started yesterday.\n\nSent from my iPhone\n\n"
        "> On 3 Mar 2025, at 10:15, Care Support <support@care.test> wrote:\n> Please update the app.",
        "Thanks, but the app still crashes when I log in.\nIt started yesterday.",
        id="en-thanks-is-not-a-signature",
    ),
    pytest.param(
        "Here are the steps:\n- open the app\n- tap Settings\n\n-- \nJohn Smith\nACME Ltd.",
        "Here are the steps:\n- open the app\n- tap Settings",
        id="en-signature-delimiter-keeps-lists",
    ),
    # --- German ------------------------------------------------------------------------------
    pytest.param(
        f"{REPLY}\n\nAm 03.03.2025 um 10:15 schrieb Care Support <support@care.test>:\n{QUOTED}",
        REPLY,
        id="de-thunderbird-schrieb",
    ),
    pytest.param(
        f"{REPLY}\n\nCare Support <support@care.test> schrieb am Mo., 3. März 2025, 10:15:\n{QUOTED}",
        REPLY,
        id="de-gmail-schrieb-am",
    ),
    pytest.param(
        f"{REPLY}\n\n"
        "Von: Care Support <support@care.test>\n"
        "Gesendet: Montag, 3. März 2025 10:15\n"
        "An: Max Mustermann <max@example.de>\n"
        "Betreff: AW: Rechnung 4711\n\n"
        "Sehr geehrter Herr Mustermann,\nanbei Ihre Rechnung.",
        REPLY,
        id="de-outlook-block",
    ),
    pytest.param(
        f"{REPLY}\n\n-----Ursprüngliche Nachricht-----\nVon: Care Support\nGesendet: Montag\n\nHallo",
        REPLY,
        id="de-urspruengliche-nachricht",
    ),
    pytest.param(
        f"{REPLY}\n\nVon meinem iPhone gesendet\n\n> Am 03.03.2025 um 10:15 schrieb Care:\n> Hallo",
        REPLY,
        id="de-iphone",
    ),
    # --- Spanish -----------------------------------------------------------------------------
    pytest.param(
        "Mi pedido no ha llegado.\n\n"
        "El lun, 3 mar 2025 a las 10:15, Care Support (<support@care.test>) escribió:\n\n"
        "> Su pedido está en camino.",
        "Mi pedido no ha llegado.",
        id="es-gmail-escribio",
    ),
    pytest.param(
        "La factura es incorrecta.\n\n"
        "De: Care Support <support@care.test>\n"
        "Enviado el: lunes, 3 de marzo de 2025 10:15\n"
        "Para: Juan Pérez <juan@example.es>\n"
        "Asunto: RE: Factura 4711\n\n"
        "Estimado Juan:",
        "La factura es incorrecta.",
        id="es-outlook-block",
    ),
    pytest.param(
        "Quiero cancelar el contrato.\n\nEnviado desde mi iPhone\n\n-----Mensaje original-----\nDe: Care",
        "Quiero cancelar el contrato.",
        id="es-iphone-and-original",
    ),
    # --- French ------------------------------------------------------------------------------
    pytest.param(
        "Ma commande n'est pas arrivée.\n\n"
        "Le lun. 3 mars 2025 à 10:15, Care Support <support@care.test> a écrit :\n\n"
        "> Votre commande est en route.",
        "Ma commande n'est pas arrivée.",
        id="fr-gmail-a-ecrit",
    ),
    pytest.param(
        "La facture est fausse.\n\n"
        "De\xa0: Care Support <support@care.test>\n"
        "Envoyé\xa0: lundi 3 mars 2025 10:15\n"
        "À\xa0: Jean Dupont <jean@example.fr>\n"
        "Objet\xa0: RE: Facture 4711\n\n"
        "Bonjour Jean,",
        "La facture est fausse.",
        id="fr-outlook-block-nbsp",
    ),
    pytest.param(
        "Je souhaite résilier.\n\nEnvoyé de mon iPhone\n\n-----Message d'origine-----\nDe : Care",
        "Je souhaite résilier.",
        id="fr-iphone-and-origine",
    ),
    # --- Dutch -------------------------------------------------------------------------------
    pytest.param(
        "Mijn pakket is niet aangekomen.\n\n"
        "Op ma 3 mrt 2025 om 10:15 schreef Care Support <support@care.test>:\n\n"
        "> Uw pakket is onderweg.",
        "Mijn pakket is niet aangekomen.",
        id="nl-gmail-schreef",
    ),
    pytest.param(
        "De factuur klopt niet.\n\n"
        "Van: Care Support <support@care.test>\n"
        "Verzonden: maandag 3 maart 2025 10:15\n"
        "Aan: Jan Jansen <jan@example.nl>\n"
        "Onderwerp: RE: Factuur 4711\n\n"
        "Beste Jan,",
        "De factuur klopt niet.",
        id="nl-outlook-block",
    ),
    pytest.param(
        "Ik wil opzeggen.\n\nVerstuurd vanaf mijn iPhone\n\n-----Oorspronkelijk bericht-----\nVan: Care",
        "Ik wil opzeggen.",
        id="nl-iphone-and-oorspronkelijk",
    ),
    # --- Outlook variants --------------------------------------------------------------------
    pytest.param(
        "Reply on top\n________________________________\n"
        "From: Care Support <support@care.test>\nSent: Monday\nTo: John\nSubject: RE: x\n\nOld text",
        "Reply on top",
        id="outlook-underscore-separator",
    ),
    pytest.param(
        "Reply in bold headers\n\n"
        "*From:* Care Support [mailto:support@care.test]\n*Sent:* Monday\n*To:* John\n*Subject:* x\n\nOld",
        "Reply in bold headers",
        id="outlook-bold-labels",
    ),
    pytest.param(
        "Answer\n\n> Subject: Test\n> From: support@care.test\n> Date: Mon, 3 Mar 2025\n>\n> Hi",
        "Answer",
        id="hotmail-quoted-header-block",
    ),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_visible_part_strips_history_and_signatures(text, expected):
    assert visible_part(text) == expected


def test_inline_answers_stay_and_the_quotes_between_them_go():
    text = (
        "On Tue, Apr 29, 2014 at 4:22 PM, Care <support@care.test> wrote:\n\n"
        "> Which model do you have?\n\nThe X200.\n\n> When did you buy it?\n\nLast May.\n"
    )
    assert visible_part(text) == "The X200.\n\nLast May."


def test_double_dash_inside_a_line_is_not_a_signature():
    text = "The fix -- as discussed -- works.\n\nJohn"
    assert visible_part(text) == text


def test_a_mail_that_is_only_a_forward_is_shown_whole():
    text = "-----Original Message-----\nFrom: Anna\nSent: Monday\nTo: John\nSubject: Order\n\nPlease ship it."
    assert visible_part(text) == text


def test_a_reply_that_only_quotes_is_shown_whole():
    text = "> Is everything fine?\n> Care"
    assert visible_part(text) == text


def test_empty_text_stays_empty():
    assert visible_part("") == ""
    assert visible_part("  \n ", "") == ""


def test_crlf_line_ends_are_understood():
    text = "Fixed, thanks.\r\n\r\nOn Mon, 3 Mar 2025, Care <support@care.test> wrote:\r\n> Does it work?\r\n"
    assert visible_part(text) == "Fixed, thanks."


def test_sent_from_my_phone_only_as_a_short_line():
    text = "Here it is.\n\nSent from my desk, which is much easier than my mobile phone."
    assert visible_part(text) == text


@pytest.mark.parametrize(
    ("sender", "text", "expected"),
    [
        (
            "John Smith",
            "The app crashes.\n\nBest regards\nJohn Smith\nACME Ltd.\n+44 20 1234",
            "The app crashes.",
        ),
        ("Müller, Bernd", "Bitte zurückrufen.\n\nViele Grüße\nBernd Müller", "Bitte zurückrufen."),
        ("Anna Schmidt", "Please call me.\n\nAnna Schmidt, ACME GmbH\nTel. 030 1234", "Please call me."),
        ("Noam", "Simone,\n\nIt is example.com.\n\nThank you,\nNoam", "Simone,\n\nIt is example.com."),
        (
            "Anna Schmidt",
            "Hi,\nAnna here: the invoice is wrong.\nPlease check it.",
            "Hi,\nAnna here: the invoice is wrong.\nPlease check it.",
        ),
    ],
    ids=["closing-and-name", "comma-name", "name-and-title", "first-name", "name-in-a-sentence"],
)
def test_a_closing_with_the_senders_name_is_a_signature(sender, text, expected):
    assert visible_part(text, sender_name=sender) == expected


# --- HTML-only mail ---------------------------------------------------------------------------


def test_html_gmail_quote_is_cut():
    html = (
        '<div dir="ltr">Mein Paket fehlt.</div><br><div class="gmail_quote">'
        '<div class="gmail_attr">Am Mo., 3. März 2025 um 10:15 Uhr schrieb Care '
        "&lt;support@care.test&gt;:</div>"
        '<blockquote class="gmail_quote">Ihr Paket ist unterwegs.</blockquote></div>'
    )
    assert visible_part("", html) == "Mein Paket fehlt."


def test_html_apple_mail_blockquote_and_its_header_line_are_cut():
    html = (
        "<div>Ma commande est incomplète.</div><div><br><div>Le 3 mars 2025 à 10:15, Care "
        '&lt;support@care.test&gt; a écrit :</div><br><blockquote type="cite">Bonjour</blockquote></div>'
    )
    assert visible_part("", html) == "Ma commande est incomplète."


def test_html_outlook_reply_header_is_cut():
    html = (
        "<p>De factuur klopt niet.</p><div id='appendonsend'></div><hr>"
        "<div id='divRplyFwdMsg'><b>Van:</b> Care<br><b>Verzonden:</b> maandag<br></div><p>Beste Jan</p>"
    )
    assert visible_part("", html) == "De factuur klopt niet."


def test_html_rule_before_an_outlook_header_block_is_a_cut():
    html = (
        "<p>Please call me back.</p><hr><b>From:</b> Care<br><b>Sent:</b> Monday<br>"
        "<b>To:</b> John<br><b>Subject:</b> RE: x<br><p>Old text</p>"
    )
    assert visible_part("", html) == "Please call me back."


def test_text_wins_over_html_when_both_are_given():
    assert visible_part("Plain answer", "<p>HTML answer</p>") == "Plain answer"


def test_html_to_text_keeps_paragraphs_apart_and_survives_junk():
    assert html_to_text("<p>One</p><p>Two</p>").split() == ["One", "Two"]
    assert html_to_text('<?xml version="1.0" encoding="utf-8"?><p>x</p>') == "x"
    assert html_to_text("") == ""
    assert html_to_text("<<<>>>") is not None


def test_a_long_quoted_thread_is_fast():
    text = "Short answer.\n\n" + "> " + "quoted line with some words in it\n> " * 30_000
    started = time.perf_counter()
    assert visible_part(text) == "Short answer."
    assert time.perf_counter() - started < 1.0


def test_a_customers_own_from_to_lines_are_not_history():
    text = "Please book a ticket:\nFrom: Berlin\nTo: Munich\nDate: 12 May\n\nThanks, Anna"
    assert visible_part(text) == text


def test_mail_parser_reply_finds_headers_in_more_languages():
    # Polish is not among Care's own rules; mail-parser-reply knows "Dnia … napisał(a):".
    text = (
        "Paczka nie dotarła.\n\n"
        "Dnia 3 marca 2025 o 10:15 Care <support@care.test> napisał(a):\n\n"
        "Twoja paczka jest w drodze."
    )
    assert visible_part(text) == "Paczka nie dotarła."


@pytest.mark.parametrize(
    "text",
    ["Hello\n" + "\n" * 60_000 + "Bye", "Table\n" + "-----\nrow\n" * 20_000, "Hi\n" + " \n" * 60_000],
    ids=["blank-lines", "separators", "space-lines"],
)
def test_pathological_layouts_are_fast(text):
    # mail-parser-reply's signature patterns take minutes on the first of these; Care skips them.
    started = time.perf_counter()
    assert visible_part(text, sender_name="John Smith")
    assert time.perf_counter() - started < 2.0
