"""Benchmark ``email_ingest``: mixed inbound mail through the whole pipeline into PostgreSQL.

Per message, exactly what a Celery worker does minus the broker: ``email_receive(..., process=False)``
stores the raw bytes (``InboundMessage``), then ``process_stored`` parses, threads and writes the
ticket, interaction and attachments in one transaction. Attachments go to a temporary
``MEDIA_ROOT``, so the run never writes into the development media folder.

The corpus (``build_corpus``) is generated with the stdlib ``email`` package before anything is
timed, from a fixed seed, so every run sends the same bytes: about 50 % plain-text new tickets,
20 % HTML+text alternatives, 15 % with one to three attachments (10 to 200 kB, log-uniform: most are
small), 15 % replies with quoted history that thread by ``In-Reply-To``/``References`` (to an earlier
message of the run) or by a ``[MAIL-123]`` reference in the subject. Bodies are German, English,
Spanish, French and Dutch, with greetings, closings, signatures and realistic headers (Received,
DKIM-Signature).

The messages go to their own tenant (code ``MAIL``) and mailbox (``auto_acknowledge`` off: no SMTP).
Its email rows (inbound messages, tickets, interactions, customers, the ticket counter…) are
deleted before each variant and at the end of the run: repeated runs measure the same thing, ticket
numbers start at 1 (the subject references rely on that), and the dataset's ticket count, which
``ensure_dataset`` checks, is the same after the run as before.

Variants (one JSON line each):

- ``email_ingest.pipeline``: store + process per message, one process. ``per_second`` is messages
  divided by the wall time of the whole batch.
- ``email_ingest.store`` / ``email_ingest.process``: the two halves of the same loop, timed apart;
  ``per_second`` is messages divided by the summed time of that half (the store-only rate).
- ``email_ingest.parallel_2``: the same batch split over two forked worker processes, each with
  its own connection, same tenant. Conversations stay on one worker, so a reply never overtakes
  the message it answers. ``per_second`` is all messages over the wall time from the common start
  to the last worker's end.

Before each variant a warm-up batch (not timed) is processed in order: it loads the language model,
fills caches and creates the tickets that the ``[MAIL-n]`` subject references point at, so that
their numbers are known even when two workers race for the ticket counter.

``BENCH_PROFILE=/path/file.prof`` runs the single-process batch under cProfile, writes the stats
there and prints the top functions to stderr (the timings of that run include cProfile's overhead).
"""

from __future__ import annotations

import base64
import cProfile
import datetime as dt
import html
import io
import math
import multiprocessing
import os
import pstats
import random
import tempfile
import textwrap
import time
import traceback
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

import psycopg
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext, override_settings

from bench.database import _connect_params
from bench.harness import Context, Result, benchmark, log, machine_load, percentile
from care.connectors.dispatch import process_stored
from care.connectors.email.ingest import email_receive
from care.connectors.models import InboundMessage, InboundSource, InboundStatus, Mailbox, OutboundDelivery
from care.contacts.models import Customer, Identity
from care.routing.models import QueuedItem, RoutingDecision
from care.sla.models import SlaClock, SlaEvent
from care.tenants.models import Tenant
from care.tickets.models import Attachment, Interaction, Ticket, TicketCounter, TicketEvent, TicketLink

FULL_MESSAGES, QUICK_MESSAGES = 10_000, 500
FULL_WARMUP, QUICK_WARMUP = 300, 60
PARALLEL_WORKERS = 2
SEED = 20261127
TARGET_PER_SECOND = 200

TENANT_CODE = "MAIL"
TENANT_SLUG = "bench-mail"
MAILBOX_ADDRESS = "support@mail.bench.care.test"
LANGUAGES = ("de", "en", "es", "fr", "nl")

# Kind of message → share of the corpus (replies are split further by how they thread).
PLAIN, HTML, ATTACHMENTS, REPLY_HEADERS, REPLY_SUBJECT = "plain", "html", "attachments", "reply", "reply_ref"
MIX: tuple[tuple[str, float], ...] = (
    (PLAIN, 0.50),
    (HTML, 0.20),
    (ATTACHMENTS, 0.15),
    (REPLY_HEADERS, 0.09),
    (REPLY_SUBJECT, 0.06),
)
REPLIES = frozenset({REPLY_HEADERS, REPLY_SUBJECT})
MIN_ATTACHMENT, MAX_ATTACHMENT = 10 * 1024, 200 * 1024
MAX_QUOTED_CHARS = 6000
BASE_DATE = dt.datetime(2026, 11, 16, 7, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))

# Every table that holds rows of the mail tenant, children first (the foreign keys are deferred
# anyway, the order only keeps the statements cheap to check).
_TENANT_MODELS: tuple[type[Any], ...] = (
    SlaEvent,
    SlaClock,
    RoutingDecision,
    QueuedItem,
    OutboundDelivery,
    InboundMessage,
    Attachment,
    TicketEvent,
    TicketLink,
    Interaction,
    Ticket,
    Identity,
    Customer,
    TicketCounter,
)


# --- the corpus ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Language:
    code: str
    weight: float
    first_names: tuple[str, ...]
    last_names: tuple[str, ...]
    domains: tuple[str, ...]
    greetings: tuple[str, ...]
    subjects: tuple[str, ...]  # {n}: a number unique to the message, so new tickets never merge
    sentences: tuple[str, ...]  # {n}, {amount}, {date}, {reading}
    attachment_sentence: str
    follow_ups: tuple[str, ...]
    closings: tuple[str, ...]
    wrote: str  # {date} {name} {address}
    reply_prefix: str
    mobile: str
    outlook: tuple[str, str, str, str, str]  # marker, From, Sent, To, Subject labels
    phone: str
    date_format: str
    decimal: str
    document: str  # file-name stem of a PDF


_LANGUAGE_DATA = (
    Language(
        code="de",
        weight=0.35,
        first_names=("Anna", "Lukas", "Jürgen", "Sabine", "Mehmet", "Katrin", "Stefan", "Björn"),
        last_names=("Schmidt", "Müller", "Weiß", "Becker", "Yılmaz", "Hoffmann", "Schäfer", "Krüger"),
        domains=("gmx.de", "web.de", "t-online.de", "posteo.de"),
        greetings=("Guten Tag,", "Sehr geehrte Damen und Herren,", "Hallo,", "Liebes Service-Team,"),
        subjects=(
            "Frage zu meiner Rechnung {n}",
            "Zählerstand für Vertrag {n}",
            "Lieferung {n} ist nicht angekommen",
            "Kündigung meines Vertrags {n}",
            "Adressänderung, Kundennummer {n}",
            "Anmeldung in der App nicht möglich (Kundennummer {n})",
            "Erstattung für Bestellung {n}",
            "Lastschrift für Rechnung {n} fehlgeschlagen",
        ),
        sentences=(
            "Ich habe heute meine Rechnung {n} erhalten und der Betrag von {amount} Euro erscheint mir "
            "viel zu hoch.",
            "Mein Zählerstand am {date} betrug {reading} kWh, die Abrechnung geht aber von einem deutlich "
            "höheren Verbrauch aus.",
            "Könnten Sie bitte den monatlichen Abschlag prüfen und gegebenenfalls anpassen?",
            "Das Paket sollte am {date} ankommen, aber die Sendungsverfolgung zeigt seit vier Tagen keinen "
            "neuen Status.",
            "Ich habe bereits zweimal bei Ihrer Hotline angerufen und man hat mir einen Rückruf versprochen.",
            "Bitte kündigen Sie meinen Vertrag {n} zum nächstmöglichen Zeitpunkt und bestätigen Sie mir die "
            "Kündigung schriftlich.",
            "Wir sind am {date} umgezogen, die neue Anschrift lautet Lindenstraße 12, 10115 Berlin.",
            "Seit dem letzten Update zeigt die App beim Anmelden nur noch eine Fehlermeldung an.",
            "Ich bitte um Erstattung von {amount} Euro auf das bei Ihnen hinterlegte Konto.",
            "Die Lastschrift für die Rechnung {n} wurde von meiner Bank zurückgegeben, weil die IBAN einen "
            "Tippfehler enthält.",
            "Können Sie mir außerdem sagen, wann der Techniker kommt, um den Router auszutauschen?",
            "Vielen Dank im Voraus für Ihre Hilfe.",
            "Über eine kurze Bestätigung, dass meine Nachricht angekommen ist, würde ich mich freuen.",
            "Mein Nachbar hat übrigens dasselbe Problem, es scheint also nicht nur mich zu betreffen.",
        ),
        attachment_sentence=(
            "Im Anhang finden Sie ein Foto des Zählers und eine Kopie des letzten Schreibens."
        ),
        follow_ups=(
            "Vielen Dank für Ihre Antwort.",
            "Leider habe ich auf meine Anfrage unten noch keine Antwort erhalten.",
            "Das Problem besteht leider weiterhin.",
            "Hier die zusätzlichen Angaben, um die Sie gebeten hatten.",
        ),
        closings=("Mit freundlichen Grüßen", "Viele Grüße", "Beste Grüße", "Freundliche Grüße"),
        wrote="Am {date} schrieb {name} <{address}>:",
        reply_prefix="AW: ",
        mobile="Von meinem iPhone gesendet",
        outlook=("-----Ursprüngliche Nachricht-----", "Von", "Gesendet", "An", "Betreff"),
        phone="Tel. +49 30 {digits}",
        date_format="%d.%m.%Y",
        decimal=",",
        document="Rechnung",
    ),
    Language(
        code="en",
        weight=0.25,
        first_names=("Emma", "James", "Olivia", "Harry", "Priya", "Jack", "Siobhan", "Noah"),
        last_names=("Smith", "Jones", "Taylor", "Brown", "Patel", "O'Connor", "Williams", "Evans"),
        domains=("gmail.com", "outlook.com", "yahoo.co.uk", "btinternet.com"),
        greetings=("Hello,", "Dear Sir or Madam,", "Hi there,", "Good morning,"),
        subjects=(
            "Question about my invoice {n}",
            "Meter reading for contract {n}",
            "Delivery {n} has not arrived",
            "Cancel my contract {n}",
            "Change of address, customer number {n}",
            "Cannot log in to the app (customer number {n})",
            "Refund for order {n}",
            "Direct debit failed for invoice {n}",
        ),
        sentences=(
            "I received my invoice {n} today and the amount of {amount} EUR seems far too high to me.",
            "My meter reading on {date} was {reading} kWh, but the bill assumes a much higher consumption.",
            "Could you please check the monthly instalment and adjust it if necessary?",
            "The parcel was supposed to arrive on {date}, but the tracking page has not changed for four "
            "days.",
            "I have already called your hotline twice and was told someone would get back to me.",
            "Please cancel my contract {n} at the earliest possible date and confirm the cancellation in "
            "writing.",
            "We moved on {date}; the new address is 12 Station Road, Manchester M1 2AB.",
            "Since the last update the app only shows an error message when I try to log in.",
            "I would like a refund of {amount} EUR to the bank account you have on file.",
            "The direct debit for invoice {n} was returned by my bank because of a typo in the IBAN.",
            "Could you also tell me when the engineer will come to replace the router?",
            "Thank you in advance for your help.",
            "I would appreciate a short confirmation that you received this message.",
            "My neighbour has the same problem, by the way, so it does not seem to be only me.",
        ),
        attachment_sentence="Attached you will find a photo of the meter and a copy of your last letter.",
        follow_ups=(
            "Thank you for your reply.",
            "I still have not heard back from you regarding my request below.",
            "Unfortunately the problem has not been solved yet.",
            "Here is the additional information you asked for.",
        ),
        closings=("Kind regards,", "Best regards,", "Many thanks,", "Regards,"),
        wrote="On {date}, {name} <{address}> wrote:",
        reply_prefix="Re: ",
        mobile="Sent from my iPhone",
        outlook=("-----Original Message-----", "From", "Sent", "To", "Subject"),
        phone="Phone +44 161 {digits}",
        date_format="%d %B %Y",
        decimal=".",
        document="invoice",
    ),
    Language(
        code="es",
        weight=0.15,
        first_names=("Lucía", "Javier", "María José", "Sergio", "Carmen", "Álvaro", "Nuria", "Íñigo"),
        last_names=("García", "Fernández", "Peña", "Núñez", "López", "Martínez", "Ibáñez", "Ruiz"),
        domains=("gmail.com", "hotmail.es", "telefonica.net", "yahoo.es"),
        greetings=("Buenos días:", "Estimados señores:", "Hola,", "Buenas tardes,"),
        subjects=(
            "Consulta sobre mi factura {n}",
            "Lectura del contador del contrato {n}",
            "El pedido {n} no ha llegado",
            "Baja del contrato {n}",
            "Cambio de dirección, cliente {n}",
            "No puedo iniciar sesión en la aplicación (cliente {n})",
            "Reembolso del pedido {n}",
            "Domiciliación rechazada de la factura {n}",
        ),
        sentences=(
            "Hoy he recibido la factura {n} y el importe de {amount} euros me parece demasiado alto.",
            "La lectura de mi contador el {date} era de {reading} kWh, pero la factura supone un consumo "
            "mucho mayor.",
            "¿Podrían revisar la cuota mensual y ajustarla si es necesario?",
            "El paquete debía llegar el {date}, pero el seguimiento no ha cambiado desde hace cuatro días.",
            "Ya he llamado dos veces a su servicio de atención al cliente y me dijeron que me llamarían.",
            "Les ruego que den de baja mi contrato {n} lo antes posible y me lo confirmen por escrito.",
            "Nos mudamos el {date}; la nueva dirección es calle Mayor 12, 28013 Madrid.",
            "Desde la última actualización, la aplicación solo muestra un mensaje de error al iniciar "
            "sesión.",
            "Solicito el reembolso de {amount} euros en la cuenta bancaria que tienen registrada.",
            "Mi banco devolvió el recibo de la factura {n} porque el IBAN tenía un error.",
            "¿Me pueden decir también cuándo vendrá el técnico a cambiar el router?",
            "Muchas gracias de antemano por su ayuda.",
            "Les agradecería una breve confirmación de que han recibido este mensaje.",
            "Por cierto, mi vecino tiene el mismo problema, así que no parece que sea solo yo.",
        ),
        attachment_sentence="Les adjunto una foto del contador y una copia de la última carta.",
        follow_ups=(
            "Gracias por su respuesta.",
            "Todavía no he recibido respuesta a mi consulta de abajo.",
            "Lamentablemente el problema sigue sin resolverse.",
            "Les envío la información adicional que me pidieron.",
        ),
        closings=("Un saludo,", "Saludos cordiales,", "Atentamente,", "Muchas gracias,"),
        wrote="El {date}, {name} <{address}> escribió:",
        reply_prefix="RE: ",
        mobile="Enviado desde mi iPhone",
        outlook=("-----Mensaje original-----", "De", "Enviado el", "Para", "Asunto"),
        phone="Tel. +34 91 {digits}",
        date_format="%d/%m/%Y",
        decimal=",",
        document="factura",
    ),
    Language(
        code="fr",
        weight=0.13,
        first_names=("Chloé", "Léa", "François", "Hélène", "Mathieu", "Zoé", "Benoît", "Anaïs"),
        last_names=("Lefèvre", "Dubois", "Moreau", "Girard", "Fontaine", "Roux", "Bérubé", "Lemaître"),
        domains=("orange.fr", "free.fr", "laposte.net", "sfr.fr"),
        greetings=("Bonjour,", "Madame, Monsieur,", "Bonsoir,", "Bonjour à toute l'équipe,"),
        subjects=(
            "Question sur ma facture {n}",
            "Relevé du compteur pour le contrat {n}",
            "La livraison {n} n'est pas arrivée",
            "Résiliation de mon contrat {n}",
            "Changement d'adresse, client {n}",
            "Impossible de me connecter à l'application (client {n})",
            "Remboursement de la commande {n}",
            "Prélèvement refusé pour la facture {n}",
        ),
        sentences=(
            "J'ai reçu aujourd'hui ma facture {n} et le montant de {amount} euros me semble beaucoup trop "
            "élevé.",
            "Le relevé de mon compteur le {date} était de {reading} kWh, mais la facture suppose une "
            "consommation bien plus élevée.",
            "Pourriez-vous vérifier la mensualité et l'ajuster si nécessaire ?",
            "Le colis devait arriver le {date}, mais le suivi n'a pas changé depuis quatre jours.",
            "J'ai déjà appelé deux fois votre service client et on m'a promis de me rappeler.",
            "Merci de résilier mon contrat {n} dès que possible et de me confirmer la résiliation par écrit.",
            "Nous avons déménagé le {date} ; la nouvelle adresse est 12 rue de la République, 69002 Lyon.",
            "Depuis la dernière mise à jour, l'application n'affiche qu'un message d'erreur lorsque je me "
            "connecte.",
            "Je souhaite le remboursement de {amount} euros sur le compte bancaire que vous avez enregistré.",
            "Ma banque a rejeté le prélèvement de la facture {n} à cause d'une erreur dans l'IBAN.",
            "Pouvez-vous aussi me dire quand le technicien viendra remplacer la box ?",
            "Je vous remercie par avance pour votre aide.",
            "Je vous serais reconnaissant de bien vouloir me confirmer la bonne réception de ce message.",
            "Mon voisin a d'ailleurs le même problème, cela ne semble donc pas venir de chez moi.",
        ),
        attachment_sentence="Vous trouverez ci-joint une photo du compteur et une copie du dernier courrier.",
        follow_ups=(
            "Merci pour votre réponse.",
            "Je n'ai toujours pas reçu de réponse à ma demande ci-dessous.",
            "Malheureusement, le problème n'est toujours pas résolu.",
            "Voici les informations complémentaires que vous m'avez demandées.",
        ),
        closings=("Cordialement,", "Bien cordialement,", "Merci beaucoup,", "Salutations,"),
        wrote="Le {date}, {name} <{address}> a écrit :",
        reply_prefix="RE : ",
        mobile="Envoyé de mon iPhone",
        outlook=("-----Message d'origine-----", "De", "Envoyé", "À", "Objet"),
        phone="Tél. +33 4 {digits}",
        date_format="%d/%m/%Y",
        decimal=",",
        document="facture",
    ),
    Language(
        code="nl",
        weight=0.12,
        first_names=("Sanne", "Daan", "Eva", "Bram", "Fleur", "Joost", "Marloes", "Thijs"),
        last_names=("de Vries", "Jansen", "van den Berg", "Bakker", "Visser", "Smit", "de Jong", "Mulder"),
        domains=("ziggo.nl", "kpnmail.nl", "hotmail.nl", "xs4all.nl"),
        greetings=("Goedendag,", "Geachte heer, mevrouw,", "Hallo,", "Beste klantenservice,"),
        subjects=(
            "Vraag over mijn factuur {n}",
            "Meterstand voor contract {n}",
            "Levering {n} is niet aangekomen",
            "Opzegging van mijn contract {n}",
            "Adreswijziging, klantnummer {n}",
            "Kan niet inloggen in de app (klantnummer {n})",
            "Terugbetaling voor bestelling {n}",
            "Automatische incasso voor factuur {n} mislukt",
        ),
        sentences=(
            "Ik heb vandaag mijn factuur {n} ontvangen en het bedrag van {amount} euro lijkt me veel te "
            "hoog.",
            "Mijn meterstand op {date} was {reading} kWh, maar de rekening gaat uit van een veel hoger "
            "verbruik.",
            "Kunt u het maandelijkse termijnbedrag controleren en zo nodig aanpassen?",
            "Het pakket zou op {date} aankomen, maar de track-and-trace is al vier dagen niet veranderd.",
            "Ik heb al twee keer met uw klantenservice gebeld en er werd beloofd dat ik teruggebeld zou "
            "worden.",
            "Wilt u mijn contract {n} zo snel mogelijk opzeggen en de opzegging schriftelijk bevestigen?",
            "Wij zijn op {date} verhuisd; het nieuwe adres is Kerkstraat 12, 1017 GC Amsterdam.",
            "Sinds de laatste update toont de app alleen nog een foutmelding wanneer ik probeer in te "
            "loggen.",
            "Ik verzoek u {amount} euro terug te storten op het rekeningnummer dat bij u bekend is.",
            "Mijn bank heeft de incasso voor factuur {n} teruggeboekt omdat er een typefout in het IBAN "
            "stond.",
            "Kunt u mij ook laten weten wanneer de monteur komt om de router te vervangen?",
            "Alvast bedankt voor uw hulp.",
            "Ik zou een korte bevestiging van ontvangst van dit bericht op prijs stellen.",
            "Mijn buren hebben trouwens hetzelfde probleem, het ligt dus niet alleen aan mij.",
        ),
        attachment_sentence="In de bijlage vindt u een foto van de meter en een kopie van de laatste brief.",
        follow_ups=(
            "Bedankt voor uw antwoord.",
            "Ik heb nog steeds geen antwoord ontvangen op mijn vraag hieronder.",
            "Helaas is het probleem nog steeds niet opgelost.",
            "Hierbij de aanvullende informatie waar u om vroeg.",
        ),
        closings=("Met vriendelijke groet,", "Vriendelijke groeten,", "Groeten,", "Bedankt,"),
        wrote="Op {date} schreef {name} <{address}>:",
        reply_prefix="Antw: ",
        mobile="Verzonden vanaf mijn iPhone",
        outlook=("-----Oorspronkelijk bericht-----", "Van", "Verzonden", "Aan", "Onderwerp"),
        phone="Tel. +31 20 {digits}",
        date_format="%d-%m-%Y",
        decimal=",",
        document="factuur",
    ),
)
_LANGUAGES = {language.code: language for language in _LANGUAGE_DATA}

# (content type, extension, leading magic bytes); the rest of each file is random bytes.
_FILE_KINDS: tuple[tuple[str, str, bytes], ...] = (
    ("application/pdf", "pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"),
    ("image/jpeg", "jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01"),
    ("image/png", "png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"),
    ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx", b"PK\x03\x04"),
)
_MAILERS = (
    ("User-Agent", "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:115.0) Gecko/20100101 Thunderbird/115.5.1"),
    ("X-Mailer", "Microsoft Outlook 16.0"),
    ("X-Mailer", "iPhone Mail (21B101)"),
    ("User-Agent", "Roundcube Webmail/1.6.5"),
)


@dataclass(frozen=True)
class Sender:
    name: str
    address: str
    language: Language


@dataclass(frozen=True)
class Planned:
    """One message of the corpus and what processing it must lead to."""

    index: int
    kind: str
    raw: bytes
    message_id: str
    language: str
    attachments: int
    parent: int | None  # the message a reply answers
    group: int  # conversation within the timed batch: one worker processes all of it, in order
    expected_rule: str  # summary["threaded_by"]: "" for a new ticket, "headers" or "subject"


@dataclass
class _Thread:
    """What a later reply needs to know about a message."""

    sender: Sender
    subject: str  # without reply prefixes or reference
    text: str  # the plain body, quoted by replies
    message_id: str
    references: list[str]
    date: dt.datetime
    ticket_number: int | None  # known only for messages processed in order (the warm-up)


@dataclass(frozen=True)
class Corpus:
    warmup: tuple[Planned, ...]
    timed: tuple[Planned, ...]
    build_seconds: float

    def mix(self) -> dict[str, int]:
        return dict(Counter(message.kind for message in self.timed))

    def languages(self) -> dict[str, int]:
        return dict(sorted(Counter(message.language for message in self.timed).items()))


def _ascii(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.replace("ı", "i"))
    return "".join(char for char in decomposed if char.isascii() and (char.isalnum() or char in ". "))


class _Builder:
    """Draws every choice from one seeded ``random.Random``: the same arguments give the same bytes."""

    def __init__(self, seed: int, customers: int) -> None:
        self.rng = random.Random(seed)
        self.languages = list(_LANGUAGE_DATA)
        self.weights = [language.weight for language in self.languages]
        self.senders = [self._sender(number) for number in range(customers)]

    def _sender(self, number: int) -> Sender:
        language = self.rng.choices(self.languages, self.weights)[0]
        first, last = self.rng.choice(language.first_names), self.rng.choice(language.last_names)
        local = f"{_ascii(first)}.{_ascii(last)}".lower().replace(" ", "")
        return Sender(f"{first} {last}", f"{local}{number}@{self.rng.choice(language.domains)}", language)

    # -- text

    def _fill(self, template: str, language: Language, number: int) -> str:
        amount = f"{self.rng.randint(20, 1400)}{language.decimal}{self.rng.randint(0, 99):02d}"
        day = BASE_DATE - dt.timedelta(days=self.rng.randint(2, 40))
        return template.format(
            n=number,
            amount=amount,
            date=day.strftime(language.date_format),
            reading=self.rng.randint(1000, 48000),
        )

    def _paragraphs(self, language: Language, number: int, *, attachment: bool) -> list[str]:
        count = self.rng.choices((1, 2, 3), (0.35, 0.45, 0.2))[0]
        paragraphs = []
        for _ in range(count):
            sentences = self.rng.sample(language.sentences, self.rng.randint(1, 4))
            paragraphs.append(" ".join(self._fill(sentence, language, number) for sentence in sentences))
        if attachment:
            paragraphs.append(language.attachment_sentence)
        return paragraphs

    def _signature(self, sender: Sender) -> list[str]:
        roll = self.rng.random()
        if roll < 0.25:
            digits = f"{self.rng.randint(1000000, 9999999)}"
            return ["", "-- ", sender.name, sender.language.phone.format(digits=digits)]
        if roll < 0.4:
            return ["", sender.language.mobile]
        return []

    def _plain(self, sender: Sender, opening: str, paragraphs: Sequence[str], signature: list[str]) -> str:
        language = sender.language
        wrap = self.rng.random() < 0.6  # most clients wrap at 72 columns; some send one line per paragraph
        body = [textwrap.fill(p, 72) if wrap else p for p in paragraphs]
        lines = [opening, "", *"\n\n".join(body).split("\n"), "", self.rng.choice(language.closings)]
        lines += [sender.name.split()[0] if self.rng.random() < 0.5 else sender.name, *signature]
        return "\n".join(lines) + "\n"

    def _html(self, sender: Sender, opening: str, paragraphs: Sequence[str], signature: list[str]) -> str:
        closing = html.escape(self.rng.choice(sender.language.closings))
        parts = [
            '<html><head><meta http-equiv="Content-Type" content="text/html; charset=utf-8">',
            "<style>p{margin:0;} .sig td{font-size:9pt;color:#666}</style></head>",
            '<body><div dir="ltr" style="font-family:Calibri,Arial,sans-serif;font-size:11pt">',
            f"<p>{html.escape(opening)}</p><p><br></p>",
        ]
        for paragraph in paragraphs:
            parts.append(f"<p>{html.escape(paragraph)}</p><p><br></p>")
        parts.append(f"<p>{closing}<br><b>{html.escape(sender.name)}</b></p>")
        if signature:
            parts.append(
                '<table class="sig"><tr><td><img src="https://cdn.example.net/logo.png" width="64" '
                'alt="logo"></td><td>'
                + "<br>".join(html.escape(line) for line in signature if line.strip() and line != "-- ")
                + "</td></tr></table>"
            )
        parts.append('<img src="https://track.example.net/open.gif?id=8731" width="1" height="1" alt="">')
        parts.append("</div></body></html>")
        return "\n".join(parts)

    def _attachment(self, language: Language, number: int) -> tuple[bytes, str, str, str]:
        content_type, extension, magic = self.rng.choice(_FILE_KINDS)
        # Log-uniform between 10 and 200 kB: many small files, a few large ones, as in real mail.
        size = int(MIN_ATTACHMENT * math.exp(self.rng.random() * math.log(MAX_ATTACHMENT / MIN_ATTACHMENT)))
        content = magic + self.rng.randbytes(size - len(magic))
        names = {
            "pdf": f"{language.document}_{number}.pdf",
            "jpg": f"IMG_{self.rng.randint(1000, 9999)}.jpg",
            "png": f"Screenshot {BASE_DATE:%Y-%m-%d} at {self.rng.randint(10, 23)}.{self.rng.randint(10, 59)}"
            ".png",
            "docx": f"{'Kündigung' if language.code == 'de' else 'letter'}_{number}.docx",
        }
        maintype, subtype = content_type.split("/")
        return content, maintype, subtype, names[extension]

    # -- headers

    def _trace(self, sender: Sender, date: dt.datetime) -> bytes:
        """What the receiving servers put on top: Return-Path, Received, DKIM-Signature, results.

        Written as raw folded lines, as an MTA prepends them (and because building them through the
        ``email`` header registry would make the corpus several times slower to generate).
        """
        rng = self.rng
        domain = sender.address.split("@")[1]
        when = format_datetime(date)
        lines = [f"Return-Path: <{sender.address}>", f"Delivered-To: {MAILBOX_ADDRESS}"]
        hops = (
            ("mx1.mail.bench.care.test", f"mail-out{rng.randint(1, 9)}.{domain}"),
            (f"mail-out{rng.randint(1, 9)}.{domain}", f"smtp{rng.randint(10, 99)}.int.{domain}"),
        )
        for by, source in hops:
            ip = ".".join(str(rng.randint(1, 254)) for _ in range(4))
            lines.append(
                f"Received: from {source} ({source} [{ip}])\r\n\tby {by} (Postfix) with ESMTPS id "
                f"{rng.getrandbits(40):010X}\r\n\tfor <{MAILBOX_ADDRESS}>; {when}"
            )
        body_hash = base64.b64encode(rng.randbytes(32)).decode()
        signature = base64.b64encode(rng.randbytes(256)).decode()
        folded = "\r\n\t ".join(signature[i : i + 70] for i in range(0, len(signature), 70))
        lines.append(
            f"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d={domain}; s=2024;\r\n"
            f"\th=from:to:subject:date:message-id:mime-version;\r\n\tbh={body_hash};\r\n\tb={folded}"
        )
        lines.append(
            f"Authentication-Results: mx1.mail.bench.care.test;\r\n\tdkim=pass header.d={domain};"
            f"\r\n\tspf=pass smtp.mailfrom={domain}"
        )
        return ("\r\n".join(lines) + "\r\n").encode("ascii")

    def _headers(self, message: EmailMessage, sender: Sender, date: dt.datetime, message_id: str) -> None:
        message["From"] = Address(sender.name, addr_spec=sender.address)
        message["To"] = Address("Kundenservice", addr_spec=MAILBOX_ADDRESS)
        message["Date"] = format_datetime(date)
        message["Message-ID"] = f"<{message_id}>"
        name, value = self.rng.choice(_MAILERS)
        message[name] = value
        message["Content-Language"] = sender.language.code

    def _quote(self, parent: _Thread) -> tuple[list[str], str]:
        """The quoted history of a reply: as plain lines and as an HTML block."""
        language = parent.sender.language
        quoted = parent.text[:MAX_QUOTED_CHARS].rstrip("\n").split("\n")
        when = parent.date.strftime(f"{language.date_format} %H:%M")
        if self.rng.random() < 0.7:
            header = language.wrote.format(date=when, name=parent.sender.name, address=parent.sender.address)
            lines = [header, *(f"> {line}" if line else ">" for line in quoted)]
            html_header = html.escape(header)
        else:  # Outlook: a header block above the unquoted history
            marker, sent_from, sent, to, subject = language.outlook
            lines = [
                marker,
                f"{sent_from}: {parent.sender.name} <{parent.sender.address}>",
                f"{sent}: {when}",
                f"{to}: Kundenservice <{MAILBOX_ADDRESS}>",
                f"{subject}: {parent.subject}",
                "",
                *quoted,
            ]
            html_header = "<br>".join(html.escape(line) for line in lines[:5])
        body_html = "<br>".join(html.escape(line) for line in quoted)
        block = (
            f'<div class="gmail_quote"><div dir="ltr" class="gmail_attr">{html_header}</div>'
            f'<blockquote class="gmail_quote" style="margin:0 0 0 .8ex;border-left:1px #ccc solid;'
            f'padding-left:1ex">{body_html}</blockquote></div>'
        )
        return lines, block

    # -- messages

    def message(self, index: int, kind: str, parent: _Thread | None) -> tuple[bytes, _Thread, int]:
        """The raw bytes of message ``index``, what replies to it need, and its attachment count."""
        message, thread, attachments = self._message(index, kind, parent)
        # The generator draws MIME boundaries from the global ``random``; fixed ones keep the bytes
        # (and so their SHA-256) the same from run to run.
        for number, part in enumerate(message.walk()):
            if part.is_multipart():
                part.set_boundary(f"=_bench_{index:06d}_{number}_{self.rng.getrandbits(32):08x}")
        raw = self._trace(thread.sender, thread.date) + message.as_bytes(policy=policy.SMTP)
        return raw, thread, attachments

    def _message(self, index: int, kind: str, parent: _Thread | None) -> tuple[EmailMessage, _Thread, int]:
        rng = self.rng
        number = 100_000 + index  # unique: two new tickets of one customer never share a subject
        date = BASE_DATE + dt.timedelta(seconds=17 * index)
        sender = parent.sender if parent is not None else rng.choice(self.senders)
        language = sender.language
        domain = sender.address.split("@")[1]
        message_id = f"{date:%Y%m%d%H%M%S}.{index:06d}.{rng.getrandbits(48):012x}@mail.{domain}"
        message = EmailMessage()
        self._headers(message, sender, date, message_id)
        signature = self._signature(sender)
        attachments = 0

        if parent is None:
            subject = self._fill(rng.choice(language.subjects), language, number)
            message["Subject"] = subject
            paragraphs = self._paragraphs(language, number, attachment=kind == ATTACHMENTS)
            opening = rng.choice(language.greetings)
            text = self._plain(sender, opening, paragraphs, signature)
            self._set_text(message, text)
            if kind == HTML or (kind == ATTACHMENTS and rng.random() < 0.3):
                message.add_alternative(self._html(sender, opening, paragraphs, signature), subtype="html")
            if kind == ATTACHMENTS:
                attachments = rng.choices((1, 2, 3), (0.6, 0.3, 0.1))[0]
                for _ in range(attachments):
                    content, maintype, subtype, filename = self._attachment(language, number)
                    message.add_attachment(content, maintype=maintype, subtype=subtype, filename=filename)
            thread = _Thread(sender, subject, text, message_id, [], date, None)
            return message, thread, attachments

        subject = parent.subject
        if kind == REPLY_SUBJECT:
            # A client that drops the threading headers; the reference Care put in its answer stays.
            message["Subject"] = f"{language.reply_prefix}[{TENANT_CODE}-{parent.ticket_number}] {subject}"
            references: list[str] = []
        else:
            message["Subject"] = f"{language.reply_prefix}{subject}"
            references = [*parent.references[-8:], parent.message_id]
            message["In-Reply-To"] = f"<{parent.message_id}>"
            message["References"] = " ".join(f"<{ref}>" for ref in references)
        opening = rng.choice(language.follow_ups)
        paragraphs = self._paragraphs(language, number, attachment=False)[:2]
        new_text = self._plain(sender, rng.choice(language.greetings), [opening, *paragraphs], signature)
        quoted_lines, quoted_html = self._quote(parent)
        text = new_text + "\n" + "\n".join(quoted_lines) + "\n"
        self._set_text(message, text)
        if rng.random() < 0.35:  # webmail: an HTML alternative with the history in a quote container
            reply_html = self._html(sender, rng.choice(language.greetings), [opening, *paragraphs], signature)
            message.add_alternative(
                reply_html.replace("</div></body>", quoted_html + "</div></body>"), subtype="html"
            )
        thread = _Thread(sender, subject, text, message_id, references, date, parent.ticket_number)
        return message, thread, attachments

    def _set_text(self, message: EmailMessage, text: str) -> None:
        # Clients differ: quoted-printable (most), 8bit, base64 (some Outlook and mobile clients).
        cte = self.rng.choices(("quoted-printable", "8bit", "base64"), (0.6, 0.25, 0.15))[0]
        message.set_content(text, cte=cte)


def build_corpus(*, messages: int, warmup: int, seed: int = SEED) -> Corpus:
    """``warmup`` + ``messages`` raw emails, the same bytes for the same arguments."""
    started = time.monotonic()
    total = warmup + messages
    builder = _Builder(seed, customers=max(40, total // 4))
    rng = random.Random(seed + 1)
    kinds, shares = zip(*MIX, strict=True)
    threads: list[_Thread] = []
    planned: list[Planned] = []
    warm_tickets: list[int] = []  # warm-up messages whose ticket number is known
    next_number = 1
    for index in range(total):
        kind = rng.choices(kinds, shares)[0]
        if kind in REPLIES and not threads:
            kind = PLAIN
        if kind == REPLY_SUBJECT and not warm_tickets:
            kind = REPLY_HEADERS
        parent: int | None = None
        if kind == REPLY_HEADERS:
            # Mostly answers to recent mail: an exponential look-back of a few hundred messages.
            back = 1 + int(rng.expovariate(1 / 300))
            parent = index - back if back <= index else rng.randrange(index)
        elif kind == REPLY_SUBJECT:
            # A reference Care gave out: tickets of the warm-up, whose numbers are fixed in any variant.
            parent = rng.choice(warm_tickets)
        raw, thread, attachments = builder.message(
            index, kind, threads[parent] if parent is not None else None
        )
        if parent is None and index < warmup:
            thread.ticket_number = next_number
            next_number += 1
        if thread.ticket_number is not None and index < warmup:
            warm_tickets.append(index)
        threads.append(thread)
        timed_index = index - warmup
        if kind == REPLY_HEADERS and parent is not None and parent >= warmup:
            group = planned[parent].group
        else:
            group = max(timed_index, 0)
        planned.append(
            Planned(
                index=index,
                kind=kind,
                raw=raw,
                message_id=thread.message_id,
                language=thread.sender.language.code,
                attachments=attachments,
                parent=parent,
                group=group,
                expected_rule={REPLY_HEADERS: "headers", REPLY_SUBJECT: "subject"}.get(kind, ""),
            )
        )
    return Corpus(tuple(planned[:warmup]), tuple(planned[warmup:]), round(time.monotonic() - started, 2))


# --- the database side -----------------------------------------------------------------------------


def ensure_mailbox() -> Mailbox:
    """The mail tenant and its mailbox, created once; the dataset's tenants are ``TN01``…``TN20``."""
    tenant = Tenant.objects.filter(code=TENANT_CODE).first()
    if tenant is None:
        tenant = Tenant(
            name="Bench mail client",
            slug=TENANT_SLUG,
            code=TENANT_CODE,
            time_zone="Europe/Berlin",
            default_language="de",
            supported_languages=list(LANGUAGES),
            holiday_country="DE",
        )
        tenant.full_clean()
        tenant.save()
    mailbox = Mailbox.objects.select_related("tenant").filter(address=MAILBOX_ADDRESS).first()
    if mailbox is None:
        mailbox = Mailbox(
            tenant=tenant,
            name="Bench support",
            address=MAILBOX_ADDRESS,
            default_language="de",
            auto_acknowledge=False,
        )
        mailbox.full_clean()
        mailbox.save()
    if mailbox.tenant_id != tenant.pk or mailbox.auto_acknowledge or not mailbox.is_active:
        raise SystemExit(f"Mailbox {MAILBOX_ADDRESS} exists but is not the benchmark's; remove it.")
    return Mailbox.objects.select_related("tenant").get(pk=mailbox.pk)


def clear_tenant(tenant_id: int) -> int:
    """Delete every email row of the mail tenant; the ticket counter starts again at 1."""
    deleted = 0
    with transaction.atomic(), connection.cursor() as cursor:
        for model in _TENANT_MODELS:
            table = connection.ops.quote_name(model._meta.db_table)
            cursor.execute(f"DELETE FROM {table} WHERE tenant_id = %s", [tenant_id])
            deleted += max(cursor.rowcount, 0)
    return deleted


_LOCK_CLASS = 0x6D61696C  # "mail": the advisory-lock key of this benchmark


@contextmanager
def exclusive_run() -> Iterator[None]:
    """One ``email_ingest`` run per database at a time.

    Two runs at once (two ``make test`` on one server) would clear each other's tenant. A session
    advisory lock makes the second wait; it is held on a connection of its own because the parallel
    variant closes Django's connections before forking, and it is released when the process ends,
    however it ends.
    """
    dbname = connection.settings_dict["NAME"]
    with psycopg.connect(dbname=dbname, autocommit=True, **_connect_params()) as conn:
        row = conn.execute("SELECT pg_try_advisory_lock(%s, 0)", [_LOCK_CLASS]).fetchone()
        if not (row and row[0]):
            log(f"another email_ingest run is using {dbname}; waiting for it to finish")
            conn.execute("SELECT pg_advisory_lock(%s, 0)", [_LOCK_CLASS])
        yield


@contextmanager
def temporary_media() -> Iterator[str]:
    """Attachments are written to files, as in production, but into a throw-away directory."""
    with tempfile.TemporaryDirectory(prefix="care-bench-media-") as root, override_settings(MEDIA_ROOT=root):
        yield root


# --- timing ------------------------------------------------------------------------------------------


@dataclass
class BatchStats:
    """Per message: store, process and total wall time, time inside cursor.execute, queries."""

    store_ns: list[int] = field(default_factory=list)
    process_ns: list[int] = field(default_factory=list)
    total_ns: list[int] = field(default_factory=list)
    db_ns: list[int] = field(default_factory=list)
    queries: list[int] = field(default_factory=list)
    statements: list[int] = field(default_factory=list)  # queries without BEGIN/COMMIT/SAVEPOINT/RELEASE
    store_queries: list[int] = field(default_factory=list)
    started_ns: int = 0
    ended_ns: int = 0
    client_cpu_ns: int = 0  # CPU time of this Python process over the batch
    server_cpu_ns: int | None = 0  # CPU time of its PostgreSQL backend (None: not readable here)
    statuses: dict[str, int] = field(default_factory=dict)

    @property
    def wall_ns(self) -> int:
        return self.ended_ns - self.started_ns

    def merge(self, other: BatchStats) -> None:
        for name in ("store_ns", "process_ns", "total_ns", "db_ns", "queries", "statements", "store_queries"):
            getattr(self, name).extend(getattr(other, name))
        self.client_cpu_ns += other.client_cpu_ns
        if self.server_cpu_ns is not None and other.server_cpu_ns is not None:
            self.server_cpu_ns += other.server_cpu_ns
        else:
            self.server_cpu_ns = None
        self.started_ns = min(self.started_ns or other.started_ns, other.started_ns)
        self.ended_ns = max(self.ended_ns, other.ended_ns)
        self.statuses = dict(Counter(self.statuses) + Counter(other.statuses))


def run_batch(mailbox: Mailbox, messages: Sequence[Planned]) -> BatchStats:
    """Store and process each message in turn, on this process's connection."""
    stats = BatchStats()
    statuses: Counter[str] = Counter()
    in_db = [0]

    def timed_execute(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        started = time.perf_counter_ns()
        try:
            return execute(sql, params, many, context)
        finally:
            in_db[0] += time.perf_counter_ns() - started

    connection.ensure_connection()
    backend_pid = connection.connection.info.backend_pid
    server_cpu = backend_cpu_ns(backend_pid)
    client_cpu = time.process_time_ns()
    stats.started_ns = time.perf_counter_ns()
    with connection.execute_wrapper(timed_execute):
        for planned in messages:
            # The query log is a bounded deque (9,000 entries): once full, its length stops growing and
            # CaptureQueriesContext would count nothing. Empty it per message.
            connection.queries_log.clear()
            in_db[0] = 0
            with CaptureQueriesContext(connection) as captured:
                start = time.perf_counter_ns()
                stored, _created = email_receive(
                    mailbox=mailbox,
                    raw=planned.raw,
                    source=InboundSource.CLI,
                    source_ref=f"bench-{planned.index}",
                    process=False,
                )
                stored_at = time.perf_counter_ns()
                store_queries = len(connection.queries_log)
                processed = process_stored(stored.pk)
                end = time.perf_counter_ns()
            stats.store_ns.append(stored_at - start)
            stats.process_ns.append(end - stored_at)
            stats.total_ns.append(end - start)
            stats.db_ns.append(in_db[0])
            stats.queries.append(len(captured))
            stats.statements.append(
                sum(
                    1
                    for query in captured.captured_queries
                    if not query["sql"].startswith(_TRANSACTION_CONTROL)
                )
            )
            stats.store_queries.append(store_queries)
            statuses[processed.status if processed is not None else "missing"] += 1
    stats.ended_ns = time.perf_counter_ns()
    stats.client_cpu_ns = time.process_time_ns() - client_cpu
    server_cpu_end = backend_cpu_ns(backend_pid)
    stats.server_cpu_ns = (
        server_cpu_end - server_cpu if server_cpu is not None and server_cpu_end is not None else None
    )
    stats.statuses = dict(statuses)
    return stats


_TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE SAVEPOINT")
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def backend_cpu_ns(pid: int) -> int | None:
    """User + system CPU time of a PostgreSQL backend, when the server runs on this machine and its
    /proc entry is readable (fields 14 and 15 of /proc/PID/stat); None otherwise."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # After the ")" closing the command name, field 3 (state) is index 0: utime is 14, stime 15.
    return (int(fields[11]) + int(fields[12])) * 1_000_000_000 // _CLOCK_TICKS


def _profiled(func: Callable[[], BatchStats], path: str) -> BatchStats:
    profiler = cProfile.Profile()
    result = profiler.runcall(func)
    profiler.dump_stats(path)
    for order in ("cumulative", "tottime"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).strip_dirs().sort_stats(order).print_stats(35)
        log(f"cProfile of the single-process batch, by {order} (stats in {path}):\n{out.getvalue()}")
    return result


def _classify(state: str | None, wait_type: str | None, wait_event: str | None) -> str:
    """What a backend is doing in one pg_stat_activity sample, from the worker's point of view."""
    if wait_type == "Client" or (state or "").startswith("idle"):
        return "client"  # waiting for the next statement: the worker is in Python (or on the wire)
    if wait_type is None:
        return "server_cpu"
    return f"{wait_type}:{wait_event}"  # Lock:transactionid, IO:WALSync, LWLock:WALWrite…


def _sample_waits(pids: Sequence[int], interval: float, stop: Any, results: Any) -> None:
    """Forked sampler: pg_stat_activity of ``pids`` every ``interval`` s, on its own connection."""
    samples: Counter[str] = Counter()
    try:
        dbname = connection.settings_dict["NAME"]
        with psycopg.connect(dbname=dbname, autocommit=True, **_connect_params()) as conn:
            while not stop.wait(interval):
                rows = conn.execute(
                    "SELECT state, wait_event_type, wait_event FROM pg_stat_activity WHERE pid = ANY(%s)",
                    [list(pids)],
                ).fetchall()
                for state, wait_type, wait_event in rows:
                    samples[_classify(state, wait_type, wait_event)] += 1
    finally:
        results.send(dict(samples))
        results.close()


@contextmanager
def wait_sampler(pids: Sequence[int], interval: float = 0.02) -> Iterator[dict[str, float]]:
    """Where the given backends' time goes, as shares of samples: ``client`` (the worker is running
    Python), ``server_cpu`` (PostgreSQL executing), or a wait event (``Lock:transactionid``, …).
    Sampled from a separate process, so the measured workers do not share their GIL with it."""
    context = multiprocessing.get_context("fork")
    stop = context.Event()
    receive, send = context.Pipe(duplex=False)
    shares: dict[str, float] = {}
    sampler = context.Process(target=_sample_waits, args=(list(pids), interval, stop, send), daemon=True)
    sampler.start()
    send.close()
    try:
        yield shares
    finally:
        stop.set()
        counts: dict[str, int] = receive.recv() if receive.poll(30) else {}
        sampler.join(timeout=10)
        total = sum(counts.values())
        shares.update(
            {name: round(count / total, 3) for name, count in sorted(counts.items(), key=lambda kv: -kv[1])}
            if total
            else {}
        )


def _worker(
    number: int,
    mailbox_id: int,
    messages: Sequence[Planned],
    barrier: Any,
    pids: Any,
    results: Any,
) -> None:
    """A forked worker: its own connection, its share of the batch; sends back its BatchStats."""
    try:
        connections.close_all()  # inherited descriptors are the parent's; open our own
        mailbox = Mailbox.objects.select_related("tenant").get(pk=mailbox_id)
        connection.ensure_connection()
        pids[number] = connection.connection.info.backend_pid
        barrier.wait(timeout=120)
        results.send(("ok", number, run_batch(mailbox, messages)))
    except BaseException:
        results.send(("error", number, traceback.format_exc()))
    finally:
        connections.close_all()
        results.close()


def run_parallel(
    mailbox: Mailbox, messages: Sequence[Planned], workers: int
) -> tuple[BatchStats, list[BatchStats], dict[str, float]]:
    """Split ``messages`` by conversation over ``workers`` forked processes started at the same moment."""
    order: dict[int, int] = {}
    shares: list[list[Planned]] = [[] for _ in range(workers)]
    for planned in messages:
        worker = order.setdefault(planned.group, len(order) % workers)
        shares[worker].append(planned)
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(workers + 1)
    pids = context.Array("i", workers)
    connections.close_all()  # never share a connection across fork
    pipes = [context.Pipe(duplex=False) for _ in range(workers)]
    processes = [
        context.Process(
            target=_worker,
            args=(n, mailbox.pk, shares[n], barrier, pids, pipes[n][1]),
            name=f"bench-mail-{n}",
        )
        for n in range(workers)
    ]
    for process in processes:
        process.start()
    for _receive, send in pipes:
        send.close()
    try:
        barrier.wait(timeout=120)
        with wait_sampler([pids[n] for n in range(workers)]) as waits:
            outcomes = [receive.recv() for receive, _send in pipes]
    finally:
        for process in processes:
            process.join(timeout=60)
    errors = [payload for status, _n, payload in outcomes if status != "ok"]
    if errors:
        raise RuntimeError("A benchmark worker failed:\n" + "\n".join(errors))
    per_worker: list[BatchStats] = [payload for _status, _n, payload in sorted(outcomes, key=lambda o: o[1])]
    merged = BatchStats()
    for stats in per_worker:
        merged.merge(stats)
    return merged, per_worker, waits


def run_single(
    mailbox: Mailbox, messages: Sequence[Planned], profile_path: str
) -> tuple[BatchStats, dict[str, float]]:
    """The whole batch on this process's connection, optionally under cProfile."""
    connection.ensure_connection()
    with wait_sampler([connection.connection.info.backend_pid]) as waits:
        if profile_path:
            stats = _profiled(lambda: run_batch(mailbox, messages), profile_path)
        else:
            stats = run_batch(mailbox, messages)
    return stats, waits


def run_warmup(mailbox: Mailbox, corpus: Corpus) -> None:
    started = time.monotonic()
    stats = run_batch(mailbox, corpus.warmup)
    failed = {status: count for status, count in stats.statuses.items() if status != InboundStatus.PROCESSED}
    if failed:
        raise RuntimeError(f"Warm-up messages were not processed: {failed}")
    log(f"warm-up: {len(corpus.warmup)} messages in {time.monotonic() - started:.1f} s")


def check_outcomes(tenant_id: int, messages: Sequence[Planned]) -> dict[str, Any]:
    """Compare what the pipeline did with what the corpus planned: outcome and threading rule."""
    wanted = {f"bench-{planned.index}": planned for planned in messages}
    rows = InboundMessage.objects.filter(tenant_id=tenant_id, source_ref__in=list(wanted)).values_list(
        "source_ref", "status", "outcome", "summary"
    )
    outcomes: Counter[str] = Counter()
    rules: Counter[str] = Counter()
    wrong = 0
    for source_ref, status, outcome, summary in rows:
        planned = wanted[source_ref]
        rule = (summary or {}).get("threaded_by") or ""
        outcomes[outcome or status] += 1
        rules[rule or "new"] += 1
        expected_outcome = "appended" if planned.expected_rule else "created"
        if status != InboundStatus.PROCESSED or outcome != expected_outcome or rule != planned.expected_rule:
            wrong += 1
    missing = len(wanted) - sum(outcomes.values())
    report = {
        "outcomes": dict(sorted(outcomes.items())),
        "threaded_by": dict(sorted(rules.items())),
        "unexpected": wrong + missing,
    }
    if wrong or missing:
        log(f"WARNING: {wrong + missing} messages did not end as planned: {report}")
    return report


# --- results ---------------------------------------------------------------------------------------


@dataclass
class BatchResult(Result):
    """A Result whose ``per_second`` is messages over a measured duration, not 1000 / mean."""

    rate_seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        line = super().as_dict()
        line["per_second"] = round(len(self.samples_ns) / self.rate_seconds, 1) if self.rate_seconds else None
        return line


def _ms(values: Sequence[int], pct: float) -> float:
    return round(percentile([value / 1_000_000 for value in values], pct), 3)


def _batch_fields(stats: BatchStats, waits: dict[str, float]) -> dict[str, Any]:
    """Queries, database time, CPU per message and where the connection's time went."""
    messages = len(stats.total_ns)
    queries, statements = sorted(stats.queries), sorted(stats.statements)
    busy = stats.client_cpu_ns + (stats.server_cpu_ns or 0)
    return {
        "queries_median": percentile(queries, 50),
        "queries_min": queries[0],
        "statements_median": percentile(statements, 50),
        "statements_max": statements[-1],
        "store_queries": max(stats.store_queries),
        "db_median_ms": _ms(stats.db_ns, 50),
        "db_p95_ms": _ms(stats.db_ns, 95),
        "db_share": round(sum(stats.db_ns) / max(sum(stats.total_ns), 1), 3),
        "client_cpu_ms": round(stats.client_cpu_ns / messages / 1e6, 3),
        "server_cpu_ms": round(stats.server_cpu_ns / messages / 1e6, 3)
        if stats.server_cpu_ns is not None
        else None,
        # CPU of the workers and their backends over the machine's capacity during the batch.
        "machine_cpu_share": round(busy / (stats.wall_ns * (os.cpu_count() or 1)), 3),
        "time_split": waits,
    }


@benchmark(
    "email_ingest", description="Inbound email: store raw + parse/thread/write, mixed corpus, 1 and 2 workers"
)
def email_ingest(ctx: Context) -> Iterator[Result]:
    quick = ctx.options.quick
    count, warmup = (QUICK_MESSAGES, QUICK_WARMUP) if quick else (FULL_MESSAGES, FULL_WARMUP)
    log(f"building {warmup} + {count:,} messages (seed {SEED})")
    corpus = build_corpus(messages=count, warmup=warmup)
    raw_bytes = sum(len(planned.raw) for planned in corpus.timed)
    log(
        f"corpus built in {corpus.build_seconds} s: {raw_bytes / 1_048_576:.1f} MB, mix {corpus.mix()}, "
        f"languages {corpus.languages()}"
    )
    common = {
        "messages": count,
        "warmup_messages": warmup,
        "mix": corpus.mix(),
        "languages": corpus.languages(),
        "attachments": sum(planned.attachments for planned in corpus.timed),
        "raw_mb": round(raw_bytes / 1_048_576, 1),
        "raw_median_kb": round(percentile([len(p.raw) / 1024 for p in corpus.timed], 50), 1),
        "corpus_build_s": corpus.build_seconds,
        "target_per_second": TARGET_PER_SECOND,
        "cpus": os.cpu_count(),
        "quick": quick,
    }
    profile_path = os.environ.get("BENCH_PROFILE", "").strip()
    with exclusive_run(), temporary_media():
        mailbox = ensure_mailbox()
        tenant_id = mailbox.tenant_id
        try:
            # -- one worker process
            log(f"cleared {clear_tenant(tenant_id):,} rows of tenant {TENANT_CODE}")
            run_warmup(mailbox, corpus)
            log(f"email_ingest.pipeline: {count:,} messages, store + process, one process")
            single, single_waits = run_single(mailbox, corpus.timed, profile_path)
            checked = check_outcomes(tenant_id, corpus.timed)
            single_rate = count / (single.wall_ns / 1e9)
            load = machine_load()
            yield BatchResult(
                name="email_ingest.pipeline",
                samples_ns=single.total_ns,
                queries=max(single.queries),
                rows=ctx.dataset.tickets,
                rate_seconds=single.wall_ns / 1e9,
                extra={
                    **_batch_fields(single, single_waits),
                    "batch_s": round(single.wall_ns / 1e9, 2),
                    "store_median_ms": _ms(single.store_ns, 50),
                    "process_median_ms": _ms(single.process_ns, 50),
                    **checked,
                    "profiled": bool(profile_path),
                    **common,
                    "load_1m": load,
                },
            )
            for name, samples in (("store", single.store_ns), ("process", single.process_ns)):
                yield BatchResult(
                    name=f"email_ingest.{name}",
                    samples_ns=samples,
                    queries=max(single.store_queries) if name == "store" else None,
                    rows=ctx.dataset.tickets,
                    rate_seconds=sum(samples) / 1e9,
                    extra={
                        "share_of_pipeline": round(sum(samples) / sum(single.total_ns), 3),
                        "messages": count,
                        "quick": quick,
                        "profiled": bool(profile_path),
                        "load_1m": load,
                    },
                )

            # -- two worker processes, same tenant, same messages
            log(f"cleared {clear_tenant(tenant_id):,} rows of tenant {TENANT_CODE}")
            run_warmup(mailbox, corpus)
            log(
                f"email_ingest.parallel_{PARALLEL_WORKERS}: {count:,} messages "
                f"over {PARALLEL_WORKERS} processes"
            )
            merged, per_worker, parallel_waits = run_parallel(mailbox, corpus.timed, PARALLEL_WORKERS)
            checked = check_outcomes(tenant_id, corpus.timed)
            parallel_rate = count / (merged.wall_ns / 1e9)
            yield BatchResult(
                name=f"email_ingest.parallel_{PARALLEL_WORKERS}",
                samples_ns=merged.total_ns,
                queries=max(merged.queries),
                rows=ctx.dataset.tickets,
                rate_seconds=merged.wall_ns / 1e9,
                extra={
                    **_batch_fields(merged, parallel_waits),
                    "batch_s": round(merged.wall_ns / 1e9, 2),
                    "workers": PARALLEL_WORKERS,
                    "worker_messages": [len(stats.total_ns) for stats in per_worker],
                    "worker_per_second": [
                        round(len(stats.total_ns) / (stats.wall_ns / 1e9), 1) for stats in per_worker
                    ],
                    "speedup": round(parallel_rate / single_rate, 2),
                    **checked,
                    **common,
                    "load_1m": machine_load(),
                },
            )
        finally:
            log(
                f"cleared {clear_tenant(tenant_id):,} rows of tenant {TENANT_CODE} (the dataset is as before)"
            )
