"""The demo world, as data: client companies, teams, agents, and what their customers write about.

Kept apart from ``build.py`` so that the tables read as tables. See ``care.demo`` for the rules.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from care.accounts.models import Role, Team
from care.contacts.identities import SocialPlatform
from care.core.channels import Channel
from care.core.languages import Proficiency
from care.routing.models import StepHours, TeamKind
from care.tenants.models import Guideline
from care.tickets.models import Priority

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
DEMO_PASSWORDS = {login.email: login.password for login in DEMO_LOGINS}


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
    accepts_offers: bool = False  # routing offers work to accept or decline instead of assigning it
    # False: joined after the demo's month of history, so no past ticket is theirs. Keeps the tickets
    # (drawn from the list of agents) the same as before the agent was added.
    in_history: bool = True


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
    # TeleSol's Spanish first line: room for the demo's waiting Spanish email and a few more by hand.
    AgentSpec("lucia@care.example", "Lucía Fernández", CENTER, (("es", 7), ("en", 5), ("fr", 4)),
              ("TSOL", "HUDS", "CATS"), "online", ((Channel.PHONE, None), (Channel.EMAIL, 14),
                                                  (Channel.SOCIAL, None))),
    AgentSpec("pierre@care.example", "Pierre Dubois", CENTER, (("fr", 7), ("es", 5), ("en", 5)), ("TSOL",),
              "offline"),
    AgentSpec("sanne@care.example", "Sanne de Vries", CENTER, (("nl", 7), ("en", 6), ("de", 5)), ("KOOP",),
              "online", _WRITTEN),
    AgentSpec("daan@care.example", "Daan Jansen", CENTER, (("nl", 7), ("en", 5), ("de", 4)), ("KOOP",),
              "on_call"),
    AgentSpec("kasia@care.example", "Katarzyna Nowak", CENTER, (("pl", 7), ("de", 5), ("en", 5)),
              ("SWN", "KOOP"), "away", ui_language="de"),
    AgentSpec("emily@care.example", "Emily Carter", NIGHT, (("en", 7), ("es", 4)), ("HUDS", "CATS"),
              "online", accepts_offers=True),
    AgentSpec("ayse@care.example", "Ayşe Demir", NIGHT, (("tr", 7), ("de", 6), ("en", 5), ("nl", 3)),
              ("SWN", "KOOP", "HUDS", "CATS"), "online", ui_language="de"),
    AgentSpec("carlos@care.example", "Carlos Ruiz", NIGHT, (("es", 7), ("en", 6)), ("TSOL", "HUDS", "CATS"),
              "offline", _WRITTEN),
    AgentSpec("tomasz@care.example", "Tomasz Kowalski", NIGHT, (("pl", 7), ("en", 5), ("de", 4)),
              ("SWN", "KOOP", "HUDS", "CATS"), "offline"),
    # TeleSol's English fallback: writes English only, so Spanish work reaches her only through the
    # fallback step of TeleSol's routing.
    AgentSpec("olivia@care.example", "Olivia Hughes", CENTER, (("en", 7),), ("TSOL",), "online", _WRITTEN,
              in_history=False),
)

# --- Routing -------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class StepSpec:
    after_seconds: int
    hours: str = StepHours.ANY
    team_kind: str = TeamKind.ANY
    team: str = ""  # a team's name: only its agents
    language: str = ""  # a fallback language the tenant serves; "" the customer's language
    level: int | None = None  # the least proficiency; None the tenant's required level


@dataclasses.dataclass(frozen=True)
class QueueSpec:
    tenant: str
    name: str
    steps: tuple[StepSpec, ...]
    tags: tuple[str, ...] = ()
    skill: str = ""  # code of the tenant's skill the queue requires
    overflow_to: str = ""  # name of another queue of the same tenant
    overflow_after_seconds: int | None = None


ESCALATIONS = "Escalaciones SLA"
_OPEN, _CLOSED = StepHours.OPEN, StepHours.CLOSED
_NATIVE, _B2 = Proficiency.NATIVE, Proficiency.B2
_NIGHT_SHIFT = StepSpec(0, _CLOSED, team=NIGHT)  # outside service hours straight to the night pool

# A tenant's queues in matching order (the first that matches a ticket takes it). Within a queue the
# steps widen with waiting time: natives first, then anyone at B2, then the provider or a fallback.
ROUTING = (
    QueueSpec("SWN", "Kundenservice", (
        StepSpec(0, _OPEN, TeamKind.IN_HOUSE, level=_NATIVE),
        StepSpec(30, _OPEN, TeamKind.IN_HOUSE, level=_B2),
        StepSpec(60, _OPEN, TeamKind.PROVIDER),
        _NIGHT_SHIFT,
    )),
    QueueSpec("TSOL", "Facturación", (StepSpec(0, _OPEN, team=CENTER), _NIGHT_SHIFT), tags=("billing",),
              skill="facturacion", overflow_to="Atención al cliente", overflow_after_seconds=120),
    QueueSpec("TSOL", "Atención al cliente", (
        StepSpec(0, _OPEN, team=CENTER, level=_NATIVE),
        StepSpec(30, _OPEN, level=_B2),
        StepSpec(120, _OPEN, language="en", level=_B2),
        _NIGHT_SHIFT,
    )),
    # Behind the catch-all queue above, so no new work matches it (tagged or not): only SLA breaches
    # send work here (TeleSol's policies escalate to it). Anyone authorised at B2, day or night, then
    # English.
    QueueSpec("TSOL", ESCALATIONS, (StepSpec(0), StepSpec(60, language="en", level=_B2)),
              tags=("escalation",)),
    QueueSpec("KOOP", "Klantenservice", (
        StepSpec(0, _OPEN, team=CENTER, level=_NATIVE),
        StepSpec(30, _OPEN, level=_B2),
        _NIGHT_SHIFT,
    )),
    # The joint venture's daytime is Europe's night: the night pool first, then anyone authorised.
    QueueSpec("HUDS", "Customer service", (StepSpec(0, team=NIGHT), StepSpec(60))),
    QueueSpec("CATS", "Guest help", (StepSpec(0, team=NIGHT), StepSpec(60))),
)

# --- Service levels ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SlaSpec:
    """One SLA policy. Targets are minutes of counted time: service hours (minus public holidays and
    the tenant's closing days) or, with ``business_hours`` off, round the clock."""

    tenant: str
    name: str
    first_response: int | None
    next_response: int | None
    resolution: int | None
    priority: int | None = None  # None: any priority
    business_hours: bool = True
    warning_percent: int = 75
    raise_priority: bool = False  # on breach, one step up (and with it, maybe another policy)
    escalate_to: str = ""  # on breach, route again through this queue of the tenant (ROUTING)


_HIGH, _URGENT = Priority.HIGH, Priority.URGENT
_DAY_OF_SERVICE = 12 * 60  # SWN and TSOL serve twelve hours a working day

# A tenant's policies in matching order: a ticket gets the first one matching its priority.
SLA_POLICIES = (
    SlaSpec("SWN", "Störung (dringend)", 30, 60, 8 * 60, priority=_URGENT),
    SlaSpec("SWN", "Hohe Priorität", 60, 2 * 60, 16 * 60, priority=_HIGH, raise_priority=True),
    SlaSpec("SWN", "Standard", 4 * 60, 8 * 60, 3 * _DAY_OF_SERVICE),
    SlaSpec("TSOL", "Urgente", 30, 60, 8 * 60, priority=_URGENT, escalate_to=ESCALATIONS),
    SlaSpec("TSOL", "Estándar", 2 * 60, 4 * 60, 2 * _DAY_OF_SERVICE, escalate_to=ESCALATIONS),
    SlaSpec("KOOP", "Spoed", 60, 2 * 60, 8 * 60, priority=_URGENT),
    SlaSpec("KOOP", "Standaard", 4 * 60, 8 * 60, 2 * 14 * 60),
    SlaSpec("HUDS", "Urgent", 60, 2 * 60, 8 * 60, priority=_URGENT),
    SlaSpec("HUDS", "Standard", 4 * 60, 8 * 60, 3 * 12 * 60),
    # Guests are locked out at any hour, public holidays included: Catskill counts round the clock.
    SlaSpec("CATS", "Lock-outs", 15, 30, 4 * 60, priority=_URGENT, business_hours=False),
    SlaSpec("CATS", "Guest help", 60, 4 * 60, 24 * 60, business_hours=False, raise_priority=True),
)
# The tenants' own closing days besides public holidays: (tenant, month, day, name), seeded for this
# year and the next.
CLOSING_DAYS = (
    ("SWN", 12, 24, "Heiligabend"),
    ("SWN", 12, 31, "Silvester"),
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
URGENT_TAGS = frozenset({"outage", "access"})

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

# --- Phone ---------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PhoneLineSpec:
    tenant: str
    number: str  # E.164, in the tenant's country
    name: str
    ivr: tuple[str, ...]  # the menu: digit "1" chooses the first language, "2" the second, …
    answered_by: str  # the agent (email) who answers the demo day's calls
    callers: str  # prefix of the demo day's callers' numbers (two digits follow): unlike any persona's


PHONE_LINES = (
    PhoneLineSpec("SWN", "+494080800100", "Kundenservice-Hotline", ("de", "en", "tr"), "jana@care.example",
                  "+4940333010"),
    PhoneLineSpec("TSOL", "+34930800100", "Atención al cliente", ("es", "en", "fr"), "lucia@care.example",
                  "+349333010"),
    PhoneLineSpec("KOOP", "+31208080100", "Klantenservice", ("nl", "en", "de"), "ayse@care.example",
                  "+311033301"),
    PhoneLineSpec("HUDS", "+15188080100", "Customer service", ("en", "es"), "emily@care.example",
                  "+191433301"),
    PhoneLineSpec("CATS", "+18458080100", "Guest help line", ("en", "es"), "lucia@care.example",
                  "+160733301"),
)
# Where the telephone system rings each agent who takes calls (agents writing only have none).
PHONE_EXTENSIONS = {
    "agent@care.example": "201", "supervisor@care.example": "202", "jana@care.example": "203",
    "mehmet@care.example": "204", "lucia@care.example": "205", "pierre@care.example": "206",
    "daan@care.example": "207", "kasia@care.example": "208", "emily@care.example": "209",
    "ayse@care.example": "210", "tomasz@care.example": "211",
}

_REASON, _OUTCOME = "reason", "outcome"
# tenant, kind, code, label (in the tenant's language), counts as a sale
CALL_CODES = (
    ("SWN", _REASON, "abrechnung", "Abrechnung / Abschlag", False),
    ("SWN", _REASON, "zaehlerstand", "Zählerstand", False),
    ("SWN", _REASON, "stoerung", "Störung", False),
    ("SWN", _OUTCOME, "geloest", "Gelöst", False),
    ("SWN", _OUTCOME, "rueckruf", "Rückruf vereinbart", False),
    ("TSOL", _REASON, "facturacion", "Facturación", False),
    ("TSOL", _REASON, "averia", "Avería", False),
    ("TSOL", _OUTCOME, "resuelto", "Resuelto", False),
    ("TSOL", _OUTCOME, "devolver-llamada", "Devolver la llamada", False),
    ("KOOP", _REASON, "bestelling", "Bestelling", False),
    ("KOOP", _REASON, "retour", "Retour", False),
    ("KOOP", _OUTCOME, "opgelost", "Opgelost", False),
    ("KOOP", _OUTCOME, "geen-interesse", "Geen interesse", False),
    ("KOOP", _OUTCOME, "verkocht", "Verkocht", True),
    ("HUDS", _REASON, "orders", "Orders & shipping", False),
    ("HUDS", _REASON, "warranty", "Warranty claim", False),
    ("HUDS", _OUTCOME, "resolved", "Resolved", False),
    ("HUDS", _OUTCOME, "callback", "Call back", False),
    ("CATS", _REASON, "booking", "Booking", False),
    ("CATS", _REASON, "lockout", "Lock-out", False),
    ("CATS", _OUTCOME, "resolved", "Resolved", False),
    ("CATS", _OUTCOME, "callback", "Call back", False),
)
# Kooplust's agents call back customers who left items in their basket; a sale earns the revenue share.
CAMPAIGNS = (("KOOP", "Winteractie"),)
# TeleSol's contract: 85 % of calls answered within 30 s, hang-ups within 8 s not counted. The other
# tenants have none and get the usual 80/20.
SERVICE_LEVEL_TARGETS = (("TSOL", 30, 85, 8),)  # tenant, answered within (s), percent, short abandon (s)
# fmt: on
