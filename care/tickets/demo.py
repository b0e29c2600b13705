"""Demo data: five client companies, their agents, customers and a few hundred tickets.

``seed_demo()`` builds the same world on every machine (fixed random seeds, one per tenant) and is
idempotent: rows are found by natural keys (tenant code, email, identity, ``demo-…`` external ids) and
only what is missing is added, so a second run changes no counts. Tickets, customers and agent
profiles are written through their apps' services, so references and the audit trail are real.
The fixed logins in ``DEMO_LOGINS`` are printed by ``make run`` and listed in the README.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import unicodedata
from collections.abc import Sequence
from typing import Any

from django.apps import apps
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from care.accounts.models import Agent, Role, Skill, Team, User
from care.accounts.services import (
    agent_authorise,
    agent_set_channel,
    agent_set_language,
    agent_set_presence,
)
from care.contacts.identities import IdentityKind, SocialPlatform, normalise_phone
from care.contacts.models import Customer, Identity
from care.contacts.services import customer_get_or_create_by_identity, identity_add
from care.core.channels import Channel
from care.core.languages import Proficiency
from care.tenants.models import Guideline, ServiceHours, Tenant, TenantGroup
from care.tickets.models import Direction, Interaction, Priority, Ticket, TicketEvent
from care.tickets.services import interaction_add, ticket_assign, ticket_change_status, ticket_create
from care.tickets.status import ACTIONABLE, Status

SEED = 20250401
SUPERVISORS_GROUP = "Supervisors"
# Every other demo agent (jana@care.example, …) logs in with the same password as agent@.
DEMO_AGENT_PASSWORD = "care-agent"  # noqa: S105 - published demo password, refused outside DEBUG


@dataclasses.dataclass(frozen=True)
class Login:
    label: str
    email: str
    password: str


DEMO_LOGINS = (
    Login("admin", "admin@care.example", "care-admin"),
    Login("supervisor", "supervisor@care.example", "care-supervisor"),
    Login("agent", "agent@care.example", "care-agent"),
    Login("portal", "portal@energie.example", "care-portal"),
)
_PASSWORDS = {login.email: login.password for login in DEMO_LOGINS}


# --- Client companies ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TenantSpec:
    code: str
    name: str
    slug: str
    time_zone: str
    languages: tuple[str, ...]  # the default first
    language_weights: tuple[int, ...]  # how often customers write in each of ``languages``
    holidays: tuple[str, str]  # country, subdivision
    colour: str
    hours: tuple[tuple[int, str, str], ...]  # weekday (0 = Monday), opens, closes
    skills: tuple[tuple[str, str], ...]  # code, name
    guidelines: tuple[tuple[str, str, str], ...]  # kind, title, text (in the default language)
    issues: str  # key of ISSUES
    tickets: int
    phones: tuple[str, ...]  # patterns; "#" is a random digit
    platforms: tuple[str, ...]  # social platforms its customers use
    number: str  # customer number pattern
    order: str  # order or booking number pattern
    in_group: bool = False


def _days(weekdays: Sequence[int], opens: str, closes: str) -> tuple[tuple[int, str, str], ...]:
    return tuple((day, opens, closes) for day in weekdays)


_MON_FRI = range(5)
_G, _S, _P = Guideline.Kind.GREETING, Guideline.Kind.SCRIPT, Guideline.Kind.PRODUCT
_WA, _IG, _FB, _TG, _X = (
    SocialPlatform.WHATSAPP,
    SocialPlatform.INSTAGRAM,
    SocialPlatform.MESSENGER,
    SocialPlatform.TELEGRAM,
    SocialPlatform.X,
)

# The tables below are laid out by hand for reading; the formatter would put every field on a line.
# fmt: off
GROUP = ("hudson-valley", "Hudson Valley Service Partners", "Two small Hudson Valley companies sharing "
         "one service center; European agents of the night pool cover their daytime.")

TENANTS = (
    TenantSpec(
        code="SWN", name="Stadtwerke Nordlicht", slug="stadtwerke-nordlicht", time_zone="Europe/Berlin",
        languages=("de", "en", "tr"), language_weights=(80, 8, 12), holidays=("DE", "BE"), colour="#0e7490",
        hours=(*_days(_MON_FRI, "08:00", "20:00"), (5, "09:00", "14:00")),
        skills=(("strom", "Strom"), ("gas", "Gas"), ("abrechnung", "Abrechnung & Abschläge"),
                ("umzug", "Umzug & Anbieterwechsel")),
        guidelines=(
            (_G, "Begrüßung am Telefon", "„Stadtwerke Nordlicht, mein Name ist …, was kann ich für Sie tun?“ "
             "Kundinnen und Kunden siezen und mit Nachnamen ansprechen."),
            (_S, "Störung melden", "1. Adresse und Zählernummer aufnehmen. 2. Störungskarte auf bekannte "
             "Störungen prüfen. 3. Bei Gasgeruch sofort die Notdienstnummer aus dem Infoblatt nennen, "
             "Fenster öffnen lassen und das Gespräch beenden."),
            (_P, "Tarife und Abschläge", "Nordlicht Basis (Grundversorgung), Nordlicht Öko 100 (100 % "
             "Ökostrom, 12 Monate Preisgarantie). Abschläge können einmal pro Quartal kostenlos angepasst "
             "werden."),
        ),
        issues="energy", tickets=110, phones=("+49 151 ########", "+49 176 ########", "+49 30 ########"),
        platforms=(_WA, _IG, _X), number="10######", order="V-#####",
    ),
    TenantSpec(
        code="TSOL", name="TeleSol Comunicaciones", slug="telesol", time_zone="Europe/Madrid",
        languages=("es", "en", "fr"), language_weights=(78, 12, 10), holidays=("ES", "MD"), colour="#ea580c",
        hours=(*_days(_MON_FRI, "09:00", "21:00"), (5, "10:00", "14:00")),
        skills=(("fibra", "Fibra y router"), ("movil", "Móvil y roaming"), ("facturacion", "Facturación"),
                ("portabilidad", "Portabilidad")),
        guidelines=(
            (_G, "Saludo", "«Bienvenido a TeleSol, le atiende …, ¿en qué puedo ayudarle?» Tratar de usted "
             "salvo que el cliente tutee."),
            (_S, "Incidencia de fibra", "Comprobar las luces del router, reinicio guiado, consultar "
             "incidencias masivas por código postal y abrir avería si el problema persiste."),
            (_P, "Tarifas móviles", "Sol 20 (20 GB), Sol 50 (50 GB) y Sol Ilimitada, todas sin permanencia. "
             "La portabilidad tarda de 24 a 48 horas laborables."),
        ),
        issues="telecom", tickets=90, phones=("+34 6## ### ###", "+34 91# ### ###"),
        platforms=(_WA, _X, _IG, _TG), number="7########", order="S-######",
    ),
    TenantSpec(
        code="KOOP", name="Kooplust", slug="kooplust", time_zone="Europe/Amsterdam",
        languages=("nl", "en", "de"), language_weights=(75, 10, 15), holidays=("NL", ""), colour="#16a34a",
        hours=(*_days(range(6), "08:00", "22:00"), (6, "10:00", "18:00")),
        skills=(("bezorging", "Bezorging"), ("retouren", "Retouren & terugbetalingen"),
                ("betalingen", "Betalingen")),
        guidelines=(
            (_G, "Begroeting", "„Hoi, je spreekt met … van Kooplust!” We tutoyeren klanten (je en jij)."),
            (_S, "Retouren", "Retourneren is binnen 30 dagen gratis. Het retourlabel staat in Mijn Kooplust "
             "of kan opnieuw worden verstuurd; terugbetaling volgt binnen 5 werkdagen na ontvangst."),
            (_P, "Verzending", "Bezorging met PostNL of DHL: vóór 22:00 besteld is morgen in huis. "
             "Bestelnummers beginnen met KL-."),
        ),
        issues="shop", tickets=90, phones=("+31 6 ########", "+31 20 ### ####"),
        platforms=(_IG, _FB, _WA), number="K#######", order="KL-######",
    ),
    TenantSpec(
        code="HUDS", name="Hudson Harbor Outfitters", slug="hudson-harbor", time_zone="America/New_York",
        languages=("en", "es"), language_weights=(85, 15), holidays=("US", "NY"), colour="#1d4ed8",
        hours=(*_days(_MON_FRI, "09:00", "21:00"), (5, "10:00", "16:00")),
        skills=(("orders", "Orders & shipping"), ("warranty", "Warranty claims")),
        guidelines=(
            (_G, "Greeting", "“Thanks for calling Hudson Harbor Outfitters, this is …, how can I help?”"),
            (_S, "Warranty claims", "Ask for the order number and photos. Tents and packs have a two-year "
             "warranty; approve replacements up to $150 without a supervisor."),
            (_P, "Shipping", "Free shipping over $75. Orders ship from Albany, NY within one business day."),
        ),
        issues="outdoor", tickets=45, phones=("+1 518 ### ####", "+1 845 ### ####", "+1 212 ### ####"),
        platforms=(_X, _IG, _FB), number="C######", order="HH######", in_group=True,
    ),
    TenantSpec(
        code="CATS", name="Catskill Cabin Rentals", slug="catskill-cabins", time_zone="America/New_York",
        languages=("en", "es"), language_weights=(88, 12), holidays=("US", "NY"), colour="#b45309",
        # Guests get locked out at any hour: open around the clock (00:00 closing means midnight).
        hours=_days(range(7), "00:00", "00:00"),
        skills=(("bookings", "Bookings"), ("on-site", "On-site help")),
        guidelines=(
            (_G, "Greeting", "“Catskill Cabin Rentals, this is …, how can I help?”"),
            (_S, "Lock-out on arrival", "Verify the booking and the guest's name, read out the backup key "
             "box code from the booking, call the caretaker if that fails."),
            (_P, "Cancellation policy", "Free cancellation up to 14 days before arrival; after that the "
             "deposit is kept unless the cabin is rebooked."),
        ),
        issues="cabins", tickets=25, phones=("+1 845 ### ####", "+1 518 ### ####"),
        platforms=(_IG, _FB), number="G#####", order="CCR-#####", in_group=True,
    ),
)

# --- Teams and agents ----------------------------------------------------------------------------

IN_HOUSE, CENTER, NIGHT = "Nordlicht Kundenservice", "Care Center Berlin", "Night Pool"
TEAMS = (  # name, kind, tenant code (in-house only), lead's email
    (IN_HOUSE, Team.Kind.IN_HOUSE, "SWN", "jana@care.example"),
    (CENTER, Team.Kind.PROVIDER, None, "supervisor@care.example"),
    (NIGHT, Team.Kind.PROVIDER, None, "ayse@care.example"),
)
# Which team takes a tenant's unassigned tickets.
DEFAULT_TEAM = {"SWN": IN_HOUSE, "TSOL": CENTER, "KOOP": CENTER, "HUDS": NIGHT, "CATS": NIGHT}

_ALL = ((Channel.PHONE, None), (Channel.EMAIL, None), (Channel.SOCIAL, None))
_WRITTEN = ((Channel.EMAIL, 10), (Channel.SOCIAL, 4))


@dataclasses.dataclass(frozen=True)
class AgentSpec:
    email: str
    full_name: str
    team: str
    languages: tuple[tuple[str, int], ...]  # code, CEFR level (care.core.languages.Proficiency)
    tenants: tuple[str, ...]  # the first is the agent's home client: all its skills; others one skill
    presence: str
    channels: tuple[tuple[str, int | None], ...] = _ALL  # capacity None: AgentChannel.DEFAULT_CAPACITY
    role: str = Role.AGENT
    is_staff: bool = False
    ui_language: str = "en"


AGENTS = (
    AgentSpec("agent@care.example", "Alex Weber", CENTER, (("de", 7), ("es", 5), ("en", 5)),
              ("SWN", "TSOL"), "online", ui_language="de"),
    AgentSpec("supervisor@care.example", "Sabine Krüger", CENTER, (("de", 7), ("en", 6), ("nl", 4)),
              ("SWN", "KOOP"), "online", ((Channel.PHONE, None), (Channel.EMAIL, 5)),
              role=Role.SUPERVISOR, is_staff=True, ui_language="de"),
    AgentSpec("jana@care.example", "Jana Becker", IN_HOUSE, (("de", 7), ("en", 4)), ("SWN",), "online",
              ui_language="de"),
    AgentSpec("mehmet@care.example", "Mehmet Yılmaz", IN_HOUSE, (("tr", 7), ("de", 6), ("en", 4)), ("SWN",),
              "on_call", ((Channel.PHONE, None), (Channel.EMAIL, 6)), ui_language="de"),
    AgentSpec("lukas@care.example", "Lukas Hoffmann", IN_HOUSE, (("de", 7), ("en", 5), ("pl", 3)), ("SWN",),
              "away", _WRITTEN, ui_language="de"),
    AgentSpec("lucia@care.example", "Lucía Fernández", CENTER, (("es", 7), ("en", 5), ("fr", 4)),
              ("TSOL", "HUDS", "CATS"), "online"),
    AgentSpec("pierre@care.example", "Pierre Dubois", CENTER, (("fr", 7), ("es", 5), ("en", 5)), ("TSOL",),
              "offline"),
    AgentSpec("sanne@care.example", "Sanne de Vries", CENTER, (("nl", 7), ("en", 6), ("de", 5)), ("KOOP",),
              "online", _WRITTEN),
    AgentSpec("daan@care.example", "Daan Jansen", CENTER, (("nl", 7), ("en", 5), ("de", 4)), ("KOOP",),
              "on_call"),
    AgentSpec("kasia@care.example", "Katarzyna Nowak", CENTER, (("pl", 7), ("de", 5), ("en", 5)),
              ("SWN", "KOOP"), "away", ui_language="de"),
    AgentSpec("emily@care.example", "Emily Carter", NIGHT, (("en", 7), ("es", 4)), ("HUDS", "CATS"),
              "online"),
    AgentSpec("ayse@care.example", "Ayşe Demir", NIGHT, (("tr", 7), ("de", 6), ("en", 5), ("nl", 3)),
              ("SWN", "KOOP", "HUDS", "CATS"), "online", ui_language="de"),
    AgentSpec("carlos@care.example", "Carlos Ruiz", NIGHT, (("es", 7), ("en", 6)), ("TSOL", "HUDS", "CATS"),
              "offline", _WRITTEN),
    AgentSpec("tomasz@care.example", "Tomasz Kowalski", NIGHT, (("pl", 7), ("en", 5), ("de", 4)),
              ("SWN", "KOOP", "HUDS", "CATS"), "offline"),
)

# --- What customers write, and what agents answer ------------------------------------------------
# Placeholders: {num} customer number, {order} order number, {amount}, {reading} meter reading.

Issue = tuple[tuple[str, ...], dict[str, tuple[str, str]]]  # tags, language -> (subject, body)

ISSUES: dict[str, tuple[Issue, ...]] = {
    "energy": (
        (("billing",), {
            "de": ("Abschlag zu hoch",
                   "Guten Tag, mein monatlicher Abschlag wurde auf {amount} € erhöht, obwohl mein Verbrauch "
                   "gesunken ist. Können Sie das bitte prüfen? Kundennummer {num}."),
            "en": ("Monthly instalment too high",
                   "Hello, my monthly instalment has gone up to €{amount} although I use less electricity "
                   "than last year. Could you check this? Customer number {num}."),
            "tr": ("Aylık ödeme tutarı çok yüksek",
                   "Merhaba, tüketimim azalmasına rağmen aylık ödeme tutarım {amount} €'ya yükseltildi. "
                   "Kontrol edebilir misiniz? Müşteri numaram: {num}."),
        }),
        (("meter-reading",), {
            "de": ("Zählerstand übermitteln",
                   "Hallo, hier mein Zählerstand von heute früh: Strom {reading} kWh. Kundennummer {num}. "
                   "Bitte passen Sie den Abschlag gegebenenfalls an."),
            "en": ("Submitting my meter reading",
                   "Hi, here is my meter reading from this morning: electricity {reading} kWh. Customer "
                   "number {num}."),
            "tr": ("Sayaç değerini bildirmek istiyorum",
                   "Merhaba, elektrik sayacımın bu sabahki değeri {reading} kWh. Müşteri numaram {num}."),
        }),
        (("move",), {
            "de": ("Umzug – Vertrag mitnehmen",
                   "Guten Tag, wir ziehen Ende des Monats um. Kann ich meinen Strom- und Gasvertrag an die "
                   "neue Adresse mitnehmen? Kundennummer {num}."),
            "en": ("Moving house – keeping my contract",
                   "Hello, we are moving at the end of the month. Can I take my electricity and gas "
                   "contract to the new address? Customer number {num}."),
            "tr": ("Taşınma – sözleşmemi devam ettirmek istiyorum",
                   "Merhaba, ay sonunda taşınıyoruz. Elektrik ve doğalgaz sözleşmemi yeni adrese "
                   "taşıyabilir miyim? Müşteri numaram {num}."),
        }),
        (("outage",), {
            "de": ("Stromausfall in unserer Straße",
                   "Seit etwa einer Stunde hat die ganze Straße keinen Strom. Ist die Störung bekannt und "
                   "wann ist sie behoben?"),
            "en": ("Power cut in our street",
                   "The whole street has had no electricity for about an hour. Do you know about the fault "
                   "and when will it be fixed?"),
            "tr": ("Sokağımızda elektrik kesintisi",
                   "Yaklaşık bir saattir bütün sokakta elektrik yok. Arızadan haberiniz var mı, ne zaman "
                   "giderilecek?"),
        }),
        (("tariff",), {
            "de": ("Wechsel in den Ökostromtarif",
                   "Hallo, ich möchte in den Tarif Nordlicht Öko 100 wechseln. Was kostet das im Monat und "
                   "ab wann ist das möglich? Kundennummer {num}."),
            "en": ("Switching to the green tariff",
                   "Hi, I would like to switch to Nordlicht Öko 100. What would it cost per month and from "
                   "when? Customer number {num}."),
            "tr": ("Yeşil elektrik tarifesine geçiş",
                   "Merhaba, Nordlicht Öko 100 tarifesine geçmek istiyorum. Aylık ne kadar tutar ve ne "
                   "zaman başlayabilir? Müşteri numaram {num}."),
        }),
    ),
    "telecom": (
        (("fibre", "outage"), {
            "es": ("Sin conexión de fibra desde ayer",
                   "Buenas tardes, desde anoche no tengo internet en casa. El router parpadea en rojo y ya "
                   "lo he reiniciado dos veces. Cliente {num}."),
            "en": ("No fibre connection since yesterday",
                   "Good afternoon, I have had no internet since last night. The router light flashes red "
                   "and I have restarted it twice. Customer {num}."),
            "fr": ("Plus de connexion fibre depuis hier",
                   "Bonjour, je n'ai plus internet depuis hier soir. Le voyant du routeur clignote en "
                   "rouge, je l'ai redémarré deux fois. Client {num}."),
        }),
        (("billing",), {
            "es": ("Cargo duplicado en mi factura",
                   "Hola, este mes me han cobrado dos veces la cuota de {amount} €. Por favor, revisen el "
                   "cargo y devuélvanme el importe. Cliente {num}."),
            "en": ("Double charge on my bill",
                   "Hello, this month's bill charges my €{amount} plan twice. Please check and refund the "
                   "difference. Customer {num}."),
            "fr": ("Double prélèvement sur ma facture",
                   "Bonjour, ma facture de ce mois comporte deux fois le forfait de {amount} €. Merci de "
                   "vérifier et de me rembourser. Client {num}."),
        }),
        (("porting",), {
            "es": ("Portabilidad de mi número",
                   "Quiero traer mi número móvil de otro operador a TeleSol. ¿Qué necesitan de mí y cuánto "
                   "tarda la portabilidad?"),
            "en": ("Porting my number to TeleSol",
                   "I'd like to bring my mobile number over from another operator. What do you need from me "
                   "and how long does porting take?"),
            "fr": ("Portabilité de mon numéro",
                   "Je souhaite transférer mon numéro mobile chez TeleSol. De quoi avez-vous besoin et "
                   "combien de temps cela prend-il ?"),
        }),
        (("roaming",), {
            "es": ("El roaming no funciona",
                   "Estoy de viaje en Francia y no tengo datos aunque el roaming está activado. ¿Pueden "
                   "revisar mi línea? Cliente {num}."),
            "en": ("Roaming not working abroad",
                   "I'm travelling in France and have no mobile data although roaming is switched on. Can "
                   "you check my line? Customer {num}."),
            "fr": ("L'itinérance ne fonctionne pas",
                   "Je suis au Portugal et je n'ai pas de données mobiles alors que l'itinérance est "
                   "activée. Pouvez-vous vérifier ? Client {num}."),
        }),
        (("plan-change",), {
            "es": ("Cambio de tarifa móvil",
                   "Hola, me gustaría pasar a una tarifa con más gigas. ¿Qué opciones tengo sin "
                   "permanencia? Cliente {num}."),
            "en": ("Changing my mobile plan",
                   "Hi, I'd like a plan with more data. Which options do I have without a minimum term? "
                   "Customer {num}."),
            "fr": ("Changement de forfait mobile",
                   "Bonjour, je voudrais un forfait avec plus de données. Quelles sont les options sans "
                   "engagement ? Client {num}."),
        }),
    ),
    "shop": (
        (("delivery",), {
            "nl": ("Bestelling {order} nog niet ontvangen",
                   "Hoi, ik heb vorige week bestelling {order} geplaatst maar nog niets ontvangen. De track "
                   "& trace staat al dagen op 'onderweg'."),
            "en": ("Order {order} has not arrived",
                   "Hi, I placed order {order} last week but nothing has arrived. Tracking has said 'in "
                   "transit' for days. Where is the parcel?"),
            "de": ("Bestellung {order} nicht angekommen",
                   "Hallo, ich habe letzte Woche die Bestellung {order} aufgegeben, aber noch nichts "
                   "erhalten. Die Sendung steht seit Tagen auf 'unterwegs'."),
        }),
        (("return",), {
            "nl": ("Retour aanmelden",
                   "Ik wil de jas uit bestelling {order} retourneren, hij valt kleiner dan verwacht. Hoe "
                   "krijg ik een retourlabel?"),
            "en": ("Return request",
                   "I'd like to return the jacket from order {order}, it is smaller than expected. How do I "
                   "get a return label?"),
            "de": ("Rücksendung anmelden",
                   "Ich möchte die Jacke aus Bestellung {order} zurückschicken, sie fällt kleiner aus als "
                   "erwartet. Wie bekomme ich ein Retourenetikett?"),
        }),
        (("wrong-item",), {
            "nl": ("Verkeerde maat geleverd",
                   "Ik had schoenen in maat 42 besteld (bestelling {order}), maar er zat maat 40 in de "
                   "doos. Kunnen jullie de juiste maat sturen?"),
            "en": ("Wrong size delivered",
                   "I ordered shoes in size 42 (order {order}) but the box contained size 40. Can you send "
                   "the right size?"),
            "de": ("Falsche Größe geliefert",
                   "Ich hatte Schuhe in Größe 42 bestellt (Bestellung {order}), im Karton war aber Größe "
                   "40. Können Sie die richtige Größe schicken?"),
        }),
        (("refund",), {
            "nl": ("Terugbetaling nog niet ontvangen",
                   "Mijn retour van bestelling {order} is twee weken geleden bij jullie aangekomen, maar ik "
                   "heb de € {amount} nog niet teruggekregen."),
            "en": ("Refund not received yet",
                   "My return of order {order} reached you two weeks ago but I still haven't had my "
                   "€{amount} back."),
            "de": ("Erstattung noch nicht erhalten",
                   "Meine Rücksendung zu Bestellung {order} ist seit zwei Wochen bei Ihnen, die {amount} € "
                   "habe ich aber noch nicht zurückbekommen."),
        }),
        (("payment",), {
            "nl": ("Betaling met iDEAL mislukt",
                   "Bij het afrekenen gaf iDEAL een foutmelding, maar € {amount} is wel afgeschreven. Is "
                   "mijn bestelling toch doorgekomen?"),
            "en": ("Payment failed at checkout",
                   "At checkout the payment showed an error, but €{amount} has been taken from my account. "
                   "Did my order go through?"),
            "de": ("Zahlung beim Bestellen fehlgeschlagen",
                   "Beim Bezahlen kam eine Fehlermeldung, aber {amount} € wurden trotzdem abgebucht. Ist "
                   "meine Bestellung angekommen?"),
        }),
    ),
    "outdoor": (
        (("warranty",), {
            "en": ("Tent pole snapped on the first trip",
                   "Hi, a pole of the Ridgeline 2 tent I bought from you snapped on our first night out. Is "
                   "that covered by the warranty? Order {order}."),
            "es": ("Varilla de la tienda rota",
                   "Hola, una varilla de la tienda Ridgeline 2 que les compré se rompió la primera noche. "
                   "¿Lo cubre la garantía? Pedido {order}."),
        }),
        (("delivery",), {
            "en": ("Where is my order {order}?",
                   "Hello, order {order} was due on Friday and tracking hasn't moved since. We leave for "
                   "the Adirondacks next week!"),
            "es": ("¿Dónde está mi pedido {order}?",
                   "Hola, el pedido {order} debía llegar el viernes y el seguimiento no se ha movido. ¡Nos "
                   "vamos de excursión la semana que viene!"),
        }),
        (("exchange",), {
            "en": ("Exchange boots for a larger size",
                   "The Summit hiking boots from order {order} are half a size too small. Can I exchange "
                   "them for a 10.5?"),
            "es": ("Cambiar botas por una talla más",
                   "Las botas Summit del pedido {order} me quedan medio número pequeñas. ¿Puedo cambiarlas "
                   "por una talla más?"),
        }),
        (("promo",), {
            "en": ("Promo code not accepted",
                   "The code from your newsletter says 'invalid' at checkout. My cart is ${amount}; is "
                   "there a minimum?"),
            "es": ("El código de descuento no funciona",
                   "El código del boletín sale como 'no válido' al pagar. Mi carrito es de ${amount}, ¿hay "
                   "un importe mínimo?"),
        }),
    ),
    "cabins": (
        (("booking",), {
            "en": ("Change our booking dates",
                   "Hi, could we move booking {order} by one week? Same cabin if possible, two adults and a "
                   "dog."),
            "es": ("Cambiar las fechas de la reserva",
                   "Hola, ¿podemos mover la reserva {order} una semana? La misma cabaña si es posible, dos "
                   "adultos y un perro."),
        }),
        (("refund",), {
            "en": ("Cancellation and deposit refund",
                   "We have to cancel booking {order} because of a family emergency. Will we get the "
                   "${amount} deposit back?"),
            "es": ("Cancelación y devolución del depósito",
                   "Tenemos que cancelar la reserva {order} por una emergencia familiar. ¿Nos devuelven el "
                   "depósito de ${amount}?"),
        }),
        (("access",), {
            "en": ("Key box code not working",
                   "We are at the cabin and the key box code from the confirmation doesn't open it. Please "
                   "call us back, it's urgent."),
            "es": ("El código de la caja de llaves no funciona",
                   "Estamos en la cabaña y el código de la caja de llaves no funciona. Llámennos, por "
                   "favor, es urgente."),
        }),
    ),
}
_URGENT_TAGS = frozenset({"outage", "access"})

# Per language: greeting and signature around every agent reply, the replies themselves (ack, ask,
# hold, solve) and what customers write back (nudge: "any news?", answer: the details asked for).
# Placeholders: {first} customer's first name, {agent} agent's first name, {tenant}, {num}.
TEXTS: dict[str, dict[str, str]] = {
    "de": {
        "greet": "Hallo {first},",
        "sign": "Viele Grüße\n{agent}\n{tenant}",
        "ack": "vielen Dank für Ihre Nachricht. Wir kümmern uns darum und melden uns spätestens morgen.",
        "ask": "damit wir weiterhelfen können, brauchen wir noch Ihre Kundennummer und, falls vorhanden, "
               "ein Foto des betreffenden Dokuments. Antworten Sie einfach auf diese Nachricht.",
        "hold": "wir haben Ihr Anliegen an die zuständige Fachabteilung gegeben und melden uns, sobald wir "
                "eine Rückmeldung haben.",
        "solve": "wir haben das für Sie erledigt; die Änderung ist hinterlegt und Sie erhalten in den "
                 "nächsten Tagen eine Bestätigung. Wenn noch etwas offen ist, antworten Sie gern auf diese "
                 "Nachricht.",
        "nudge": "Hallo, ich habe noch keine Antwort bekommen. Ist meine Nachricht angekommen?",
        "answer": "Hallo, meine Kundennummer ist {num}, das Foto hängt an. Danke!",
    },
    "en": {
        "greet": "Hi {first},",
        "sign": "Best regards\n{agent}\n{tenant}",
        "ack": "thank you for getting in touch. We are looking into it and will come back to you by "
               "tomorrow.",
        "ask": "to finish this for you we need your customer number and, if you have it, a photo of the "
               "document in question. Just reply to this message.",
        "hold": "we have passed your request to the responsible department and will be in touch as soon as "
                "we hear back.",
        "solve": "we have sorted this out for you; the change is recorded and you will receive a "
                 "confirmation in the next few days. If anything is still unclear, just reply to this "
                 "message.",
        "nudge": "Hello, I haven't heard back yet. Did my message arrive?",
        "answer": "Hi, my customer number is {num} and I've attached the photo. Thanks!",
    },
    "tr": {
        "greet": "Merhaba {first},",
        "sign": "Saygılarımızla\n{agent}\n{tenant}",
        "ack": "mesajınız için teşekkür ederiz. Talebinizle ilgileniyoruz, en geç yarın size dönüş "
               "yapacağız.",
        "ask": "talebinizi tamamlayabilmemiz için müşteri numaranıza ve varsa ilgili belgenin bir "
               "fotoğrafına ihtiyacımız var. Bu mesajı yanıtlamanız yeterli.",
        "hold": "talebinizi ilgili birime ilettik; geri dönüş alır almaz sizinle iletişime geçeceğiz.",
        "solve": "talebinizi sonuçlandırdık; değişiklik kaydedildi ve önümüzdeki günlerde bir onay "
                 "alacaksınız. Başka bir sorunuz olursa bu mesajı yanıtlayabilirsiniz.",
        "nudge": "Merhaba, henüz yanıt alamadım. Mesajım size ulaştı mı?",
        "answer": "Merhaba, müşteri numaram {num}, fotoğrafı ekte gönderiyorum. Teşekkürler!",
    },
    "es": {
        "greet": "Hola, {first}:",
        "sign": "Un saludo,\n{agent}\n{tenant}",
        "ack": "gracias por contactar con nosotros. Estamos revisando su consulta y le responderemos como "
               "muy tarde mañana.",
        "ask": "para poder ayudarle necesitamos su número de cliente y, si lo tiene, una foto del documento "
               "correspondiente. Basta con responder a este mensaje.",
        "hold": "hemos trasladado su consulta al departamento responsable y le avisaremos en cuanto "
                "tengamos respuesta.",
        "solve": "hemos resuelto su consulta; el cambio ya consta en nuestro sistema y recibirá una "
                 "confirmación en los próximos días. Si queda algo pendiente, responda a este mensaje.",
        "nudge": "Hola, todavía no he recibido respuesta. ¿Les ha llegado mi mensaje?",
        "answer": "Hola, mi número de cliente es {num}; adjunto la foto. ¡Gracias!",
    },
    "fr": {
        "greet": "Bonjour {first},",
        "sign": "Cordialement,\n{agent}\n{tenant}",
        "ack": "merci pour votre message. Nous traitons votre demande et revenons vers vous au plus tard "
               "demain.",
        "ask": "pour finaliser votre demande, il nous faut votre numéro client et, si possible, une photo "
               "du document concerné. Il vous suffit de répondre à ce message.",
        "hold": "nous avons transmis votre demande au service compétent et reviendrons vers vous dès que "
                "nous aurons un retour.",
        "solve": "votre demande est traitée ; la modification est enregistrée et vous recevrez une "
                 "confirmation dans les prochains jours. Si besoin, répondez simplement à ce message.",
        "nudge": "Bonjour, je n'ai toujours pas de réponse. Avez-vous bien reçu mon message ?",
        "answer": "Bonjour, mon numéro client est {num}, je joins la photo. Merci !",
    },
    "nl": {
        "greet": "Hoi {first},",
        "sign": "Groetjes,\n{agent}\n{tenant}",
        "ack": "bedankt voor je bericht. We zoeken het voor je uit en laten uiterlijk morgen van ons horen.",
        "ask": "om je verder te helpen hebben we je bestelnummer nodig en, als je die hebt, een foto van "
               "het product of de pakbon. Beantwoord dit bericht gewoon.",
        "hold": "we hebben je vraag doorgezet naar de betreffende afdeling en laten het je weten zodra we "
                "antwoord hebben.",
        "solve": "we hebben het voor je geregeld; je krijgt binnen enkele dagen een bevestiging per e-mail. "
                 "Is er nog iets? Beantwoord dan gewoon dit bericht.",
        "nudge": "Hallo, ik heb nog geen reactie gehad. Is mijn bericht aangekomen?",
        "answer": "Hoi, mijn klantnummer is {num}, de foto zit in de bijlage. Dank je!",
    },
}
# Internal notes, in the language the tenant's agents work in (its default language).
NOTES: dict[str, tuple[str, ...]] = {
    "de": ("Kunde am Telefon sehr freundlich, Rückruf zugesagt.",
           "Vertragsdaten geprüft, Kundennummer stimmt. Warte auf Rückmeldung der Abrechnung.",
           "Ähnlicher Fall letzte Woche, siehe Leitfaden „Tarife und Abschläge“."),
    "es": ("Cliente verificado con DNI. Pendiente de confirmación del equipo técnico.",
           "Revisada la factura: se abonará el cargo duplicado en el próximo ciclo.",
           "Escalado a red: hay una incidencia masiva en la zona."),
    "nl": ("Track & trace gecontroleerd: pakket ligt bij een PostNL-punt.",
           "Vaste klant, coulance toegestaan.",
           "Retourlabel opnieuw verstuurd."),
    "en": ("Checked the order history: repeat customer.",
           "Claim looks valid, asked the warehouse for a replacement.",
           "Called back, got voicemail; will try again tomorrow."),
}

FIRST_NAMES: dict[str, tuple[str, ...]] = {
    "de": ("Anna", "Lukas", "Sabine", "Thomas", "Julia", "Michael", "Katrin", "Jan", "Monika", "Felix"),
    "tr": ("Emre", "Elif", "Mustafa", "Zeynep", "Ahmet", "Fatma", "Can", "Selin"),
    "es": ("Lucía", "Javier", "María", "Alejandro", "Carmen", "Pablo", "Elena", "Diego", "Sofía", "Sergio"),
    "fr": ("Camille", "Julien", "Chloé", "Nicolas", "Manon", "Antoine", "Léa", "Hugo"),
    "nl": ("Daan", "Emma", "Sem", "Julia", "Lucas", "Sophie", "Milan", "Tess", "Bram", "Fleur"),
    "en": ("Emily", "James", "Olivia", "Michael", "Sarah", "David", "Jessica", "Daniel", "Ashley", "Ryan"),
}
LAST_NAMES: dict[str, tuple[str, ...]] = {
    "de": ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz",
           "Krause"),
    "tr": ("Yılmaz", "Kaya", "Demir", "Şahin", "Çelik", "Öztürk", "Arslan", "Aydın"),
    "es": ("García", "Martínez", "López", "Sánchez", "Pérez", "Gómez", "Fernández", "Ruiz", "Díaz", "Moreno"),
    "fr": ("Martin", "Bernard", "Dubois", "Thomas", "Robert", "Petit", "Durand", "Leroy"),
    "nl": ("de Jong", "Jansen", "de Vries", "van den Berg", "Bakker", "Visser", "Smit", "Meijer", "de Boer",
           "Mulder"),
    "en": ("Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson", "Taylor", "Clark"),
}
MAIL_DOMAINS = ("mail.example", "post.example", "web.example", "inbox.example")
# fmt: on

# How tickets that ended in each status got there, step by step. "in"/"out"/"note" add an
# interaction (the part after the colon names its text), "assign" assigns, "status" changes status.
_SOLVED = (
    ("in:issue", "assign", "out:solve", "status:solved"),
    ("in:issue", "assign", "note", "out:solve", "status:solved"),
    (
        "in:issue",
        "assign",
        "out:ask",
        "status:pending",
        "in:answer",
        "status:open",
        "out:solve",
        "status:solved",
    ),
)
_PLOTS: dict[str, tuple[tuple[str, ...], ...]] = {
    Status.NEW: (("in:issue",), ("in:issue",), ("in:issue", "in:nudge")),
    Status.OPEN: (
        ("in:issue", "assign"),
        ("in:issue", "assign", "note"),
        ("in:issue", "assign", "out:ack"),
        ("in:issue", "in:nudge", "assign", "out:ack"),
    ),
    Status.PENDING: (
        ("in:issue", "assign", "out:ask", "status:pending"),
        ("in:issue", "assign", "note", "out:ask", "status:pending"),
    ),
    Status.ON_HOLD: (("in:issue", "assign", "note", "out:hold", "status:on_hold"),),
    Status.SOLVED: _SOLVED,
    Status.CLOSED: tuple((*plot, "status:closed") for plot in _SOLVED),
}
# Minutes after the previous step, drawn uniformly (and always cut short to stay before now).
_GAPS = {"in": (60, 1440), "assign": (2, 90), "note": (5, 60), "out": (10, 240), "status": (1, 5)}
_CLOSING_GAP = (2 * 1440, 5 * 1440)
_DIRECTIONS = {"in": Direction.INBOUND, "out": Direction.OUTBOUND, "note": Direction.NOTE}
_IDENTITY_KIND = {
    Channel.EMAIL: IdentityKind.EMAIL,
    Channel.PHONE: IdentityKind.PHONE,
    Channel.SOCIAL: IdentityKind.SOCIAL,
}


@dataclasses.dataclass(frozen=True)
class Persona:
    """A customer of one tenant, with the addresses they reach it by."""

    name: str
    language: str
    email: str
    phone: str  # E.164, or "" when we have no number
    social: tuple[str, str] | None  # platform, handle


@dataclasses.dataclass(frozen=True)
class Action:
    kind: str  # "in", "out", "note", "assign" or "status"
    at: dt.datetime
    text: str = ""  # the interaction's body, or the new status


@dataclasses.dataclass(frozen=True)
class TicketPlan:
    index: int  # 1-based position among the tenant's demo tickets; names its interactions' external ids
    persona: int
    channel: str
    language: str
    subject: str
    tags: tuple[str, ...]
    priority: int
    assignee: str  # the agent's email, "" when unassigned
    created_at: dt.datetime
    sla_due_at: dt.datetime | None
    actions: tuple[Action, ...]


@dataclasses.dataclass(frozen=True)
class Summary:
    counts: dict[str, int]
    tickets_created: int
    tickets_found: int


@dataclasses.dataclass(frozen=True)
class _TenantWork:
    code: str
    tenant: Tenant
    agents: dict[str, Agent]
    default_team: Team
    customers: list[tuple[Customer, dict[str, Identity]]]  # per persona: customer, identity per channel


def external_id(code: str, index: int, position: int) -> str:
    """The external id of a demo interaction: what makes a second run find instead of create."""
    return f"demo-{code}-{index}-{position}"


@transaction.atomic
def seed_demo(*, now: dt.datetime | None = None) -> Summary:
    """Build the demo world, or complete it; rows that exist are found by natural key and kept.

    The fixed logins get their published passwords back on every run.
    """
    now = now or timezone.now()
    tenants = _ensure_tenants()
    agents, teams = _ensure_people(tenants)
    _ensure_supervisors_group([agents["supervisor@care.example"].user])
    created = found = 0
    for spec in TENANTS:
        made, existing = _ensure_tickets(spec, tenant=tenants[spec.code], agents=agents, teams=teams, now=now)
        created += made
        found += existing
    return Summary(counts=demo_counts(), tickets_created=created, tickets_found=found)


def demo_counts() -> dict[str, int]:
    """Rows per model, for the command's summary (and the tests of idempotency)."""
    models: dict[str, Any] = {
        "tenants": Tenant,
        "tenant groups": TenantGroup,
        "teams": Team,
        "users": User,
        "agents": Agent,
        "customers": Customer,
        "identities": Identity,
        "tickets": Ticket,
        "interactions": Interaction,
        "ticket events": TicketEvent,
    }
    return {label: int(model.objects.count()) for label, model in models.items()}


# --- Tenants, people, permissions ----------------------------------------------------------------


def _ensure_tenants() -> dict[str, Tenant]:
    slug, name, description = GROUP
    group, _created = TenantGroup.objects.update_or_create(
        slug=slug, defaults={"name": name, "description": description}
    )
    return {spec.code: _ensure_tenant(spec, group if spec.in_group else None) for spec in TENANTS}


def _ensure_tenant(spec: TenantSpec, group: TenantGroup | None) -> Tenant:
    country, subdivision = spec.holidays
    tenant: Tenant
    tenant, _created = Tenant.objects.update_or_create(
        code=spec.code,
        defaults={
            "name": spec.name,
            "slug": spec.slug,
            "group": group,
            "time_zone": spec.time_zone,
            "default_language": spec.languages[0],
            "supported_languages": list(spec.languages),
            "holiday_country": country,
            "holiday_subdivision": subdivision,
            "colour": spec.colour,
            "is_active": True,
        },
    )
    tenant.full_clean()  # time zone, languages and holiday region are checked here, not by the database
    for weekday, opens, closes in spec.hours:
        ServiceHours.objects.update_or_create(
            tenant=tenant,
            weekday=weekday,
            opens_at=dt.time.fromisoformat(opens),
            defaults={"closes_at": dt.time.fromisoformat(closes)},
        )
    for position, (kind, title, body) in enumerate(spec.guidelines):
        Guideline.objects.update_or_create(
            tenant=tenant,
            title=title,
            defaults={"kind": kind, "body": body, "language": spec.languages[0], "position": position},
        )
    for code, name in spec.skills:
        Skill.objects.update_or_create(tenant=tenant, code=code, defaults={"name": name})
    return tenant


def _ensure_user(
    *,
    email: str,
    full_name: str,
    role: str,
    password_hash: str,
    language: str = "en",
    is_staff: bool = False,
    is_superuser: bool = False,
    portal_tenant: Tenant | None = None,
) -> User:
    user, _created = User.objects.update_or_create(
        email=email,
        defaults={
            "full_name": full_name,
            "role": role,
            "language": language,
            "is_staff": is_staff,
            "is_superuser": is_superuser,
            "is_active": True,
            "portal_tenant": portal_tenant,
            "password": password_hash,
        },
    )
    return user


def _ensure_people(tenants: dict[str, Tenant]) -> tuple[dict[str, Agent], dict[str, Team]]:
    """Users, teams and agent profiles. Every run sets the published passwords again."""
    # Hashing is slow on purpose (about 0.3 s each): once per distinct password, not per user.
    hashes = {password: make_password(password) for password in {*_PASSWORDS.values(), DEMO_AGENT_PASSWORD}}

    def password_hash(email: str) -> str:
        return hashes[_PASSWORDS.get(email, DEMO_AGENT_PASSWORD)]

    admin, portal = "admin@care.example", "portal@energie.example"
    _ensure_user(
        email=admin,
        full_name="Ada Admin",
        role=Role.ADMIN,
        password_hash=password_hash(admin),
        is_staff=True,
        is_superuser=True,
    )
    _ensure_user(
        email=portal,
        full_name="Petra Lange (Stadtwerke Nordlicht)",
        role=Role.PORTAL,
        password_hash=password_hash(portal),
        language="de",
        portal_tenant=tenants["SWN"],
    )
    users = {
        spec.email: _ensure_user(
            email=spec.email,
            full_name=spec.full_name,
            role=spec.role,
            password_hash=password_hash(spec.email),
            language=spec.ui_language,
            is_staff=spec.is_staff,
        )
        for spec in AGENTS
    }
    teams: dict[str, Team] = {}
    for name, kind, code, lead in TEAMS:
        teams[name], _created = Team.objects.update_or_create(
            name=name, defaults={"kind": kind, "tenant": tenants[code] if code else None, "lead": users[lead]}
        )
    by_key = {
        (skill.tenant_id, skill.code): skill for skill in Skill.objects.filter(tenant__in=tenants.values())
    }
    skills = {
        spec.code: [by_key[tenants[spec.code].pk, code] for code, _name in spec.skills] for spec in TENANTS
    }
    agents = {
        spec.email: _ensure_agent(
            spec, user=users[spec.email], team=teams[spec.team], tenants=tenants, skills=skills
        )
        for spec in AGENTS
    }
    return agents, teams


def _ensure_agent(
    spec: AgentSpec, *, user: User, team: Team, tenants: dict[str, Tenant], skills: dict[str, list[Skill]]
) -> Agent:
    agent, _created = Agent.objects.update_or_create(user=user, defaults={"team": team})
    for language, level in spec.languages:
        agent_set_language(agent=agent, language=language, proficiency=level)
    for channel, capacity in spec.channels:
        agent_set_channel(agent=agent, channel=channel, capacity=capacity)
    for position, code in enumerate(spec.tenants):
        # Trained on every product of the home client, on the main one of the others.
        agent_authorise(
            agent=agent, tenant=tenants[code], skills=skills[code] if position == 0 else skills[code][:1]
        )
    return agent_set_presence(agent=agent, presence=spec.presence)


# Models supervisors may change in the admin; every other model of Care's apps they may only view.
SUPERVISOR_CHANGES = (
    "tickets.ticket",
    "tickets.interaction",
    "contacts.customer",
    "contacts.identity",
    "tenants.guideline",
    "tenants.servicehours",
)


def _ensure_supervisors_group(members: list[User]) -> Group:
    care_apps = [config.label for config in apps.get_app_configs() if config.name.startswith("care.")]
    wanted = Q(content_type__app_label__in=care_apps, codename__startswith="view_")
    for label in SUPERVISOR_CHANGES:
        app_label, model = label.split(".")
        wanted |= Q(content_type__app_label=app_label, content_type__model=model, codename=f"change_{model}")
    group, _created = Group.objects.get_or_create(name=SUPERVISORS_GROUP)
    group.permissions.set(Permission.objects.filter(wanted))
    for user in members:
        user.groups.add(group)
    return group


# --- Customers and tickets -----------------------------------------------------------------------


def _ensure_tickets(
    spec: TenantSpec, *, tenant: Tenant, agents: dict[str, Agent], teams: dict[str, Team], now: dt.datetime
) -> tuple[int, int]:
    """Create the tenant's demo tickets that do not exist yet; returns (created, found).

    The plans are drawn in full on every run, before the database is asked anything, so that the
    random sequence, and with it every ticket, is the same whichever tickets already exist.
    """
    personas, plans = plan_tenant(spec, now)
    existing = set(
        Interaction.objects.filter(tenant=tenant, external_id__startswith=f"demo-{spec.code}-").values_list(
            "external_id", flat=True
        )
    )
    todo = [plan for plan in plans if external_id(spec.code, plan.index, 1) not in existing]
    if not todo:
        return 0, len(plans)
    customers, new_customer_ids = _ensure_customers(tenant, personas)
    work = _TenantWork(spec.code, tenant, agents, teams[DEFAULT_TEAM[spec.code]], customers)
    done = [(_create_ticket(plan, work), plan) for plan in todo]
    _backdate(done, new_customer_ids)
    return len(todo), len(plans) - len(todo)


def plan_tenant(spec: TenantSpec, now: dt.datetime) -> tuple[list[Persona], list[TicketPlan]]:
    """The tenant's customers and tickets, drawn from the tenant's own fixed seed.

    Pure: the same ``spec`` and ``now`` give the same plans on every machine and every run.
    """
    rng = random.Random(f"{SEED}-{spec.code}")  # noqa: S311 - demo data, not secrets
    personas = _personas(rng, spec, count=spec.tickets * 3 // 4)
    return personas, [_plan_ticket(rng, spec, index, personas, now) for index in range(1, spec.tickets + 1)]


def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text.replace("ı", "i")).encode("ascii", "ignore").decode()
    return "".join(char for char in folded.lower() if char.isalnum())


def _digits(rng: random.Random, pattern: str) -> str:
    return "".join(str(rng.randrange(10)) if char == "#" else char for char in pattern)


def _phone(rng: random.Random, patterns: Sequence[str], used: set[str]) -> str:
    for _attempt in range(50):
        try:
            number = normalise_phone(_digits(rng, rng.choice(patterns)))
        except ValidationError:
            continue  # e.g. a US exchange starting with 0 or 1: draw again
        if number not in used:
            used.add(number)
            return number
    return ""


def _email(rng: random.Random, first: str, last: str, used: set[str]) -> str:
    local = rng.choice(
        (f"{first}.{last}", f"{first}{last}", f"{first[0]}.{last}", f"{first}.{last}{rng.randint(1, 99)}")
    )
    domain = rng.choice(MAIL_DOMAINS)
    email = f"{local}@{domain}"
    while email in used:
        email = f"{local}{rng.randint(2, 999)}@{domain}"
    used.add(email)
    return email


def _social(rng: random.Random, spec: TenantSpec, name: str, phone: str, used: set[str]) -> tuple[str, str]:
    platform = rng.choice(spec.platforms)
    if platform == SocialPlatform.WHATSAPP:
        if phone:
            return platform, phone  # WhatsApp knows people by their phone number
        platform = SocialPlatform.INSTAGRAM
    limit = 15 if platform == SocialPlatform.X else 30  # the platforms' longest handles
    handle = name[:limit]
    while handle in used:
        suffix = str(rng.randint(2, 99))
        handle = name[: limit - len(suffix)] + suffix
    used.add(handle)
    return platform, handle


def _personas(rng: random.Random, spec: TenantSpec, count: int) -> list[Persona]:
    used: set[str] = set()  # addresses handed out so far: identities are unique per tenant
    people = []
    for _position in range(count):
        language = rng.choices(spec.languages, weights=spec.language_weights)[0]
        first, last = rng.choice(FIRST_NAMES[language]), rng.choice(LAST_NAMES[language])
        email = _email(rng, _ascii(first), _ascii(last), used)
        phone = _phone(rng, spec.phones, used) if rng.random() < 0.65 else ""
        handle = f"{_ascii(first)}_{_ascii(last)}"
        social = _social(rng, spec, handle, phone, used) if rng.random() < 0.4 else None
        people.append(Persona(f"{first} {last}", language, email, phone, social))
    return people


def _status_for_age(rng: random.Random, age: dt.timedelta) -> str:
    """Recent tickets are mostly still open, old ones mostly solved or closed."""
    if age < dt.timedelta(days=1):
        weights = (40, 35, 10, 5, 10, 0)
    elif age < dt.timedelta(days=7):
        weights = (8, 25, 20, 12, 30, 5)
    else:
        weights = (2, 8, 8, 7, 30, 45)
    statuses = (Status.NEW, Status.OPEN, Status.PENDING, Status.ON_HOLD, Status.SOLVED, Status.CLOSED)
    return rng.choices(statuses, weights=weights)[0]


def _pick_agent(rng: random.Random, code: str, language: str) -> AgentSpec:
    """An agent authorised for the tenant who speaks the ticket's language well (B2 or better)."""
    authorised = [spec for spec in AGENTS if code in spec.tenants]
    fluent = [spec for spec in authorised if dict(spec.languages).get(language, 0) >= Proficiency.B2]
    return rng.choice(fluent or authorised)


def _sla_due(
    rng: random.Random, status: str, created_at: dt.datetime, now: dt.datetime
) -> dt.datetime | None:
    if status not in ACTIONABLE:
        return None  # waiting on someone else pauses the SLA; solved tickets have met or missed it
    bucket = rng.choices(("overdue", "soon", "later"), weights=(25, 30, 45))[0]
    if bucket == "overdue":
        return created_at + (now - created_at) * rng.uniform(0.3, 0.95)
    if bucket == "soon":
        return now + dt.timedelta(minutes=rng.uniform(5, 90))
    return now + dt.timedelta(hours=rng.uniform(2, 72))


def _pick_channel(rng: random.Random, persona: Persona) -> str:
    """How the customer got in touch this time: any channel we have an address of theirs for."""
    weights = {
        Channel.EMAIL: 5,
        Channel.PHONE: 4 if persona.phone else 0,
        Channel.SOCIAL: 3 if persona.social else 0,
    }
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _plan_ticket(
    rng: random.Random, spec: TenantSpec, index: int, personas: list[Persona], now: dt.datetime
) -> TicketPlan:
    persona_index = rng.randrange(len(personas))
    persona = personas[persona_index]
    channel = _pick_channel(rng, persona)
    values = {
        "num": _digits(rng, spec.number),
        "order": _digits(rng, spec.order),
        "amount": str(rng.randint(29, 189)),
        "reading": str(rng.randint(10000, 99999)),
    }
    tags, texts = rng.choice(ISSUES[spec.issues])
    subject, body = (text.format(**values) for text in texts[persona.language])
    age = dt.timedelta(days=30 * rng.random() ** 2, minutes=20)
    status = _status_for_age(rng, age)
    agent = _pick_agent(rng, spec.code, persona.language)
    urgent = bool(_URGENT_TAGS.intersection(tags))
    priority = rng.choices(Priority.values, weights=(0, 20, 50, 30) if urgent else (15, 55, 22, 8))[0]
    created_at = now - age
    words = _words(persona, agent, spec, values, issue=body, note=rng.choice(NOTES[spec.languages[0]]))
    actions = _timeline(rng, rng.choice(_PLOTS[status]), words, start=created_at, now=now)
    return TicketPlan(
        index=index,
        persona=persona_index,
        channel=channel,
        language=persona.language,
        subject=subject,
        tags=tags,
        priority=priority,
        assignee=agent.email if any(action.kind == "assign" for action in actions) else "",
        created_at=created_at,
        sla_due_at=_sla_due(rng, status, created_at, now),
        actions=actions,
    )


def _words(
    persona: Persona, agent: AgentSpec, spec: TenantSpec, values: dict[str, str], *, issue: str, note: str
) -> dict[str, str]:
    """Every text a ticket's timeline may need, by the key its plot uses."""
    texts = TEXTS[persona.language]
    names = {"first": persona.name.split(" ")[0], "agent": agent.full_name.split(" ")[0], "tenant": spec.name}
    words = {
        key: f"{texts['greet']}\n\n{texts[key]}\n\n{texts['sign']}".format(**names)
        for key in ("ack", "ask", "hold", "solve")
    }
    words.update(issue=issue, note=note, nudge=texts["nudge"], answer=texts["answer"].format(**values))
    return words


def _timeline(
    rng: random.Random, plot: Sequence[str], words: dict[str, str], *, start: dt.datetime, now: dt.datetime
) -> tuple[Action, ...]:
    """Give each step of ``plot`` a moment after the one before, never reaching ``now``."""
    actions: list[Action] = []
    moment = start
    for step in plot:
        kind, _colon, key = step.partition(":")
        if actions:  # the first step is the contact that opened the ticket, at its creation
            low, high = _CLOSING_GAP if step == "status:closed" else _GAPS[kind]
            moment += min(dt.timedelta(minutes=rng.uniform(low, high)), (now - moment) * 0.6)
        text = key if kind == "status" else words.get(key or kind, "")
        actions.append(Action(kind, moment, text))
    return tuple(actions)


def _ensure_customers(
    tenant: Tenant, personas: list[Persona]
) -> tuple[list[tuple[Customer, dict[str, Identity]]], list[int]]:
    """Find or create each persona's customer and identities; returns them and the new customers' ids."""
    known = {(row.kind, row.platform, row.value): row for row in Identity.objects.filter(tenant=tenant)}
    customers: list[tuple[Customer, dict[str, Identity]]] = []
    created_ids = []
    for persona in personas:
        customer, email, created = customer_get_or_create_by_identity(
            tenant=tenant,
            kind=IdentityKind.EMAIL,
            value=persona.email,
            display_name=persona.name,
            preferred_language=persona.language,
        )
        if created:
            created_ids.append(customer.pk)
        identities = {Channel.EMAIL.value: email}
        addresses = [(Channel.PHONE, "", persona.phone)] if persona.phone else []
        if persona.social:
            addresses.append((Channel.SOCIAL, *persona.social))
        for channel, platform, value in addresses:
            kind = _IDENTITY_KIND[channel]
            identities[channel] = known.get((kind, platform, value)) or identity_add(
                customer=customer, kind=kind, value=value, platform=platform, display_name=persona.name
            )
        customers.append((customer, identities))
    return customers, created_ids


def _create_ticket(plan: TicketPlan, work: _TenantWork) -> Ticket:
    """One demo ticket, through the services: created, assigned, talked about, moved along."""
    customer, identities = work.customers[plan.persona]
    agent = work.agents.get(plan.assignee)
    actor = agent.user if agent else None
    ticket = ticket_create(
        tenant=work.tenant,
        customer=customer,
        channel=plan.channel,
        subject=plan.subject,
        language=plan.language,
        priority=plan.priority,
        team=agent.team if agent else work.default_team,
        tags=plan.tags,
        sla_due_at=plan.sla_due_at,
    )
    position = 0
    for action in plan.actions:
        if action.kind == "assign":
            ticket = ticket_assign(ticket=ticket, agent=agent, actor=actor)
        elif action.kind == "status":
            ticket = ticket_change_status(ticket=ticket, status=action.text, actor=actor)
        else:
            position += 1
            inbound = action.kind == "in"
            interaction_add(
                ticket=ticket,
                channel=plan.channel,
                direction=_DIRECTIONS[action.kind],
                body_text=action.text,
                author_identity=identities[plan.channel] if inbound else None,
                author_user=None if inbound else actor,
                external_id=external_id(work.code, plan.index, position),
                occurred_at=action.at,
            )
    return ticket


def _backdate(done: list[tuple[Ticket, TicketPlan]], new_customer_ids: list[int]) -> None:
    """Demo back-dating: the services stamp everything with the present; move it to the plan's past.

    Only demo data does this. The queryset updates bypass the services on purpose, the append-only
    audit trail included, so that a fresh demo shows a month of history rather than one minute.
    """
    plans = {ticket.pk: plan for ticket, plan in done}
    Ticket.objects.bulk_update(
        [_dated(pk, plan) for pk, plan in plans.items()],
        ["created_at", "updated_at", "status_changed_at", "solved_at", "closed_at"],
        batch_size=200,
    )
    events = list(
        TicketEvent.objects.filter(ticket_id__in=plans)
        .order_by("ticket_id", "id")
        .only("kind", "ticket_id", "changes")
    )
    moments = {pk: _event_moments(plan) for pk, plan in plans.items()}
    for event in events:
        transition = event.changes.get("status", ()) if event.kind == TicketEvent.Kind.STATUS else ()
        key = (event.kind, *transition)
        queue = moments[event.ticket_id].get(key)
        event.created_at = queue.pop(0) if queue else plans[event.ticket_id].actions[-1].at
    TicketEvent.objects.bulk_update(events, ["created_at"], batch_size=500)
    Interaction.objects.filter(ticket_id__in=plans).update(
        created_at=F("occurred_at"), updated_at=F("occurred_at")
    )
    first_ticket = (
        Ticket.objects.filter(customer=OuterRef("pk")).order_by("created_at").values("created_at")[:1]
    )
    Customer.objects.filter(pk__in=new_customer_ids).update(
        created_at=Coalesce(Subquery(first_ticket), F("created_at")),
        updated_at=Coalesce(Subquery(first_ticket), F("updated_at")),
    )
    customer_since = Customer.objects.filter(pk=OuterRef("customer_id")).values("created_at")[:1]
    Identity.objects.filter(customer_id__in=new_customer_ids).update(
        created_at=Subquery(customer_since), updated_at=Subquery(customer_since)
    )


def _dated(pk: int, plan: TicketPlan) -> Ticket:
    ticket = Ticket(pk=pk, created_at=plan.created_at, updated_at=plan.actions[-1].at)
    ticket.status_changed_at, ticket.solved_at, ticket.closed_at = plan.created_at, None, None
    for action in plan.actions:
        if action.kind in ("assign", "status"):  # assigning a new ticket opens it
            ticket.status_changed_at = action.at
        if action.kind == "status" and action.text == Status.SOLVED:
            ticket.solved_at = action.at
        if action.kind == "status" and action.text == Status.CLOSED:
            ticket.closed_at = action.at
    return ticket


def _event_moments(plan: TicketPlan) -> dict[tuple[str, ...], list[dt.datetime]]:
    """When the plan's audit events happened, in order, keyed by kind and, for status, (before, after).

    Keyed by the transition rather than by position, so it holds whether or not assigning a new
    ticket records its implicit opening as a status event of its own.
    """
    created, assigned, status = TicketEvent.Kind.CREATED, TicketEvent.Kind.ASSIGNED, TicketEvent.Kind.STATUS
    moments: dict[tuple[str, ...], list[dt.datetime]] = {(created,): [plan.created_at]}
    current: str = Status.NEW
    for action in plan.actions:
        after: str
        if action.kind == "assign":
            moments.setdefault((assigned,), []).append(action.at)
            after = Status.OPEN if current == Status.NEW else current
        elif action.kind == "status":
            after = action.text
        else:
            continue
        if after != current:
            moments.setdefault((status, current, after), []).append(action.at)
            current = after
    return moments
