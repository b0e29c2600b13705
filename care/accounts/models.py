"""Users, roles, teams and agents: who may work which tenant's contacts, in which languages and channels.

Tenant visibility is decided here, in ``User.visible_tenant_ids``; every ``visible_to(user)`` in Care
asks this one method.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, ClassVar

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from care.core.channels import Channel
from care.core.languages import Proficiency, validate_language_code
from care.core.models import TenantOwned, TimeStampedModel
from care.tenants.models import Tenant

if TYPE_CHECKING:
    from collections.abc import Collection


class Role(models.TextChoices):
    AGENT = "agent", _("Agent")
    SUPERVISOR = "supervisor", _("Supervisor")
    PORTAL = "portal", _("Tenant portal user")
    ADMIN = "admin", _("Administrator")


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> User:
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.full_clean(exclude=["password"])
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.setdefault("role", Role.ADMIN)
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self.create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """A person who logs in. Email is the login; the role says which part of Care they use."""

    email = models.EmailField(_("email address"), unique=True)
    full_name = models.CharField(_("full name"), max_length=200, blank=True)
    role = models.CharField(_("role"), max_length=20, choices=Role.choices, default=Role.AGENT)
    portal_tenant = models.ForeignKey(
        "tenants.Tenant",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="portal_users",
        verbose_name=_("portal tenant"),
        help_text=_("The one client company a portal user belongs to."),
    )
    language = models.CharField(_("interface language"), max_length=8, default="en")
    is_staff = models.BooleanField(
        _("staff status"),
        default=False,
        help_text=_("May log into the admin site (scoped to their tenants)."),
    )
    is_active = models.BooleanField(_("active"), default=True)
    date_joined = models.DateTimeField(_("date joined"), default=timezone.now)

    objects: ClassVar[UserManager] = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        ordering = ["email"]
        constraints = [
            models.UniqueConstraint(Lower("email"), name="accounts_user_email_ci_unique"),
            models.CheckConstraint(
                condition=(models.Q(role="portal", portal_tenant__isnull=False) | ~models.Q(role="portal")),
                name="accounts_portal_user_has_tenant",
            ),
            models.CheckConstraint(
                condition=(models.Q(role="portal") | models.Q(portal_tenant__isnull=True)),
                name="accounts_only_portal_users_have_portal_tenant",
            ),
        ]

    def __str__(self) -> str:
        return self.full_name or self.email

    def clean(self) -> None:
        super().clean()
        self.email = self.email.lower()
        if self.role == Role.PORTAL and self.portal_tenant_id is None:
            raise ValidationError({"portal_tenant": _("A tenant portal user must belong to a tenant.")})
        if self.role != Role.PORTAL and self.portal_tenant_id is not None:
            raise ValidationError({"portal_tenant": _("Only tenant portal users belong to a portal tenant.")})
        if self.role == Role.PORTAL and self.is_staff:
            raise ValidationError({"is_staff": _("Tenant portal users may not use the admin site.")})

    def get_full_name(self) -> str:
        return self.full_name or self.email

    def get_short_name(self) -> str:
        return self.full_name.split(" ")[0] if self.full_name else self.email

    # --- Tenant visibility: the one rule behind every visible_to(user) ---------------------------

    @property
    def sees_all_tenants(self) -> bool:
        return self.is_active and (self.is_superuser or self.role == Role.ADMIN)

    def visible_tenant_ids(self) -> Collection[int]:
        """Tenants this user may see: the portal tenant, or those the agent is authorised for.

        Cached on the instance: a request loads its user once, so the answer is fixed per request.
        """
        cached: frozenset[int] | None = getattr(self, "_visible_tenant_ids", None)
        if cached is not None:
            return cached
        ids: frozenset[int]
        if not self.is_active:
            ids = frozenset()
        elif self.role == Role.PORTAL:
            # A client whose contract ended (tenant deactivated) loses portal access with its agents.
            ids = frozenset(
                Tenant.objects.filter(portal_users=self, is_active=True).values_list("id", flat=True)
            )
        else:
            ids = frozenset(
                TenantAuthorisation.objects.filter(agent__user=self, tenant__is_active=True).values_list(
                    "tenant_id", flat=True
                )
            )
        self._visible_tenant_ids = ids
        return ids

    def may_see_tenant(self, tenant_id: int) -> bool:
        return self.sees_all_tenants or tenant_id in self.visible_tenant_ids()


class TeamQuerySet(models.QuerySet["Team"]):
    def visible_to(self, user: Any) -> TeamQuerySet:
        """Provider teams, and the in-house teams of the tenants ``user`` may see."""
        if not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", False):
            return self.none()
        if user.sees_all_tenants:
            return self
        return self.filter(
            models.Q(tenant__isnull=True) | models.Q(tenant_id__in=list(user.visible_tenant_ids()))
        )


class Team(TimeStampedModel):
    """A group of agents: the client's own (in-house, one tenant) or the provider's (outsourced)."""

    class Kind(models.TextChoices):
        IN_HOUSE = "in_house", _("In-house")
        PROVIDER = "provider", _("Provider")

    name = models.CharField(_("name"), max_length=200, unique=True)
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    tenant = models.ForeignKey(
        "tenants.Tenant",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="in_house_teams",
        verbose_name=_("tenant"),
        help_text=_("Only for in-house teams: the company the team belongs to."),
    )
    lead = models.ForeignKey(
        User,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="led_teams",
        verbose_name=_("lead"),
    )

    objects: ClassVar[models.Manager[Team]] = TeamQuerySet.as_manager()

    class Meta:
        verbose_name = _("team")
        verbose_name_plural = _("teams")
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(kind="in_house", tenant__isnull=False)
                    | models.Q(kind="provider", tenant__isnull=True)
                ),
                name="accounts_team_tenant_matches_kind",
            )
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        super().clean()
        if self.kind == self.Kind.IN_HOUSE and self.tenant_id is None:
            raise ValidationError({"tenant": _("An in-house team belongs to one tenant.")})
        if self.kind == self.Kind.PROVIDER and self.tenant_id is not None:
            raise ValidationError({"tenant": _("A provider team serves many tenants and belongs to none.")})


class Presence(models.TextChoices):
    ONLINE = "online", _("Online")
    AWAY = "away", _("Away")
    ON_CALL = "on_call", _("On a call")
    OFFLINE = "offline", _("Offline")


class PresenceSource(models.TextChoices):
    """Who set an agent's current presence. The automatic rules undo only what they set themselves."""

    MANUAL = "manual", _("Set by hand")
    IDLE = "idle", _("Idle (no input)")
    TIMEOUT = "timeout", _("Heartbeats stopped")


class Agent(TimeStampedModel):
    """The working profile of a user who handles contacts."""

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="agent", verbose_name=_("user"))
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="agents", verbose_name=_("team"))
    presence = models.CharField(
        _("presence"), max_length=20, choices=Presence.choices, default=Presence.OFFLINE
    )
    presence_changed_at = models.DateTimeField(_("presence changed"), default=timezone.now)
    presence_source = models.CharField(
        _("presence source"),
        max_length=20,
        choices=PresenceSource.choices,
        default=PresenceSource.MANUAL,
        editable=False,
    )
    last_seen_at = models.DateTimeField(_("last seen"), null=True, blank=True)
    # Empty: this agent's presence is not kept by websocket heartbeats (only set through the API, the
    # admin or the demo), so the presence sweep never times it out. Not indexed on purpose: heartbeats
    # rewrite it every few seconds (an index would cost every one of them), and the sweep reads a table
    # of at most a few thousand agents.
    heartbeat_at = models.DateTimeField(_("last heartbeat"), null=True, blank=True, editable=False)
    # Where the telephone system rings this agent: an extension or a SIP URI (the phone route endpoint
    # answers with it; call events name the agent by either).
    phone_extension = models.CharField(_("phone extension"), max_length=40, blank=True)
    sip_uri = models.CharField(_("SIP URI"), max_length=300, blank=True)
    accepts_offers = models.BooleanField(
        _("work is offered"),
        default=False,
        help_text=_(
            "Routing offers this agent each item to accept or decline (the offer times out) instead of "
            "assigning it directly."
        ),
    )
    # Kept by routing: the strategies order agents by them (round robin, longest idle).
    last_routed_at = models.DateTimeField(_("last given work"), null=True, blank=True, editable=False)
    last_released_at = models.DateTimeField(_("last finished work"), null=True, blank=True, editable=False)
    tenants: models.ManyToManyField[Any, Any] = models.ManyToManyField(
        "tenants.Tenant", through="TenantAuthorisation", related_name="agents", verbose_name=_("tenants")
    )

    class Meta:
        verbose_name = _("agent")
        verbose_name_plural = _("agents")
        ordering = ["user__email"]
        indexes = [models.Index(fields=["presence", "team"], name="accounts_agent_presence_team")]

    def __str__(self) -> str:
        return str(self.user)


class Shift(models.Model):
    """A planned working interval of an agent. Agents with no shifts at all are not bound to a plan."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="shifts", verbose_name=_("agent"))
    starts_at = models.DateTimeField(_("starts"))
    ends_at = models.DateTimeField(_("ends"))
    note = models.CharField(_("note"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("shift")
        verbose_name_plural = _("shifts")
        ordering = ["agent", "starts_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ends_at__gt=models.F("starts_at")), name="accounts_shift_ends_after_start"
            )
        ]
        indexes = [models.Index(fields=["agent", "starts_at", "ends_at"], name="accounts_shift_agent_time")]

    def __str__(self) -> str:
        return f"{self.starts_at:%Y-%m-%d %H:%M}–{self.ends_at:%H:%M}"

    def clean(self) -> None:
        super().clean()
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValidationError({"ends_at": _("A shift must end after it starts.")})
        if self.starts_at and self.ends_at and self.ends_at - self.starts_at > dt.timedelta(hours=16):
            raise ValidationError({"ends_at": _("A shift lasts at most 16 hours.")})


class AgentLanguage(models.Model):
    agent = models.ForeignKey(
        Agent, on_delete=models.CASCADE, related_name="languages", verbose_name=_("agent")
    )
    language = models.CharField(_("language"), max_length=8, validators=[validate_language_code])
    proficiency = models.PositiveSmallIntegerField(_("proficiency"), choices=Proficiency.choices)

    class Meta:
        verbose_name = _("agent language")
        verbose_name_plural = _("agent languages")
        ordering = ["agent", "-proficiency"]
        constraints = [
            models.UniqueConstraint(fields=["agent", "language"], name="accounts_agent_language_unique")
        ]
        indexes = [models.Index(fields=["language", "proficiency"], name="accounts_agentlang_lang_level")]

    def __str__(self) -> str:
        return f"{self.language} ({self.get_proficiency_display()})"


class AgentChannel(models.Model):
    """A channel the agent works, with how many items of it they handle at once."""

    agent = models.ForeignKey(
        Agent, on_delete=models.CASCADE, related_name="channels", verbose_name=_("agent")
    )
    channel = models.CharField(_("channel"), max_length=20, choices=Channel.choices)
    capacity = models.PositiveSmallIntegerField(
        _("capacity"),
        validators=[MinValueValidator(1), MaxValueValidator(50)],
        help_text=_("Items of this channel at once, e.g. 1 call, 3 chats, 8 emails."),
    )

    DEFAULT_CAPACITY: ClassVar[dict[str, int]] = {Channel.PHONE: 1, Channel.SOCIAL: 3, Channel.EMAIL: 8}

    class Meta:
        verbose_name = _("agent channel")
        verbose_name_plural = _("agent channels")
        ordering = ["agent", "channel"]
        constraints = [
            models.UniqueConstraint(fields=["agent", "channel"], name="accounts_agent_channel_unique")
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} × {self.capacity}"


class Skill(TenantOwned):
    """A product skill of one tenant (e.g. "electricity tariffs"), required by some work."""

    code = models.SlugField(_("code"), max_length=60)
    name = models.CharField(_("name"), max_length=200)

    class Meta:
        verbose_name = _("product skill")
        verbose_name_plural = _("product skills")
        ordering = ["tenant", "name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "code"], name="accounts_skill_tenant_code_unique")
        ]

    def __str__(self) -> str:
        return self.name


class TenantAuthorisation(TenantOwned):
    """The agent is trained and authorised for this tenant (with these product skills)."""

    agent = models.ForeignKey(
        Agent, on_delete=models.CASCADE, related_name="authorisations", verbose_name=_("agent")
    )
    skills = models.ManyToManyField(
        Skill, blank=True, related_name="authorisations", verbose_name=_("skills")
    )
    note = models.CharField(_("note"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("tenant authorisation")
        verbose_name_plural = _("tenant authorisations")
        ordering = ["tenant", "agent"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "agent"], name="accounts_authorisation_unique")
        ]
        indexes = [models.Index(fields=["agent", "tenant"], name="accounts_auth_agent_tenant")]

    def __str__(self) -> str:
        return f"{self.agent} → {self.tenant}"
