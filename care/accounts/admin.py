from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import UserChangeForm as DjangoUserChangeForm
from django.contrib.auth.forms import UserCreationForm as DjangoUserCreationForm
from django.db import transaction
from django.db.models import ForeignKey, Prefetch, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from care.accounts.models import (
    Agent,
    AgentChannel,
    AgentLanguage,
    Presence,
    PresenceSource,
    Shift,
    Skill,
    Team,
    TenantAuthorisation,
    User,
)
from care.accounts.services import agent_set_presence
from care.core.admin import (
    AllTenantsOnlyAdmin,
    GlobalWritesMixin,
    ScopedRelatedFieldListFilter,
    TenantScopedAdmin,
    TenantScopedInline,
    sees_all_tenants,
)


class UserCreationForm(DjangoUserCreationForm):  # type: ignore[type-arg]
    class Meta:
        model = User
        fields = ["email", "full_name", "role", "portal_tenant"]


class UserChangeForm(DjangoUserChangeForm):  # type: ignore[type-arg]
    class Meta:
        model = User
        fields = "__all__"


@admin.register(User)
class UserAdmin(AllTenantsOnlyAdmin, DjangoUserAdmin):  # type: ignore[type-arg]
    form = UserChangeForm
    add_form = UserCreationForm
    ordering = ["email"]
    list_display = ["email", "full_name", "role", "portal_tenant", "is_staff", "is_active", "last_login"]
    list_filter = ["role", "is_staff", "is_active", "is_superuser"]
    search_fields = ["email", "full_name"]
    autocomplete_fields = ["portal_tenant"]
    list_select_related = ["portal_tenant"]
    actions = ["deactivate"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        (_("Person"), {"fields": ["full_name", "language"]}),
        (_("Role"), {"fields": ["role", "portal_tenant"]}),
        (
            _("Permissions"),
            {"fields": ["is_active", "is_staff", "is_superuser", "groups", "user_permissions"]},
        ),
        (_("Dates"), {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [
        (
            None,
            {
                "classes": ["wide"],
                "fields": ["email", "full_name", "role", "portal_tenant", "password1", "password2"],
            },
        ),
    ]

    @admin.action(
        description=_("Deactivate selected users (they can no longer log in)"), permissions=["change"]
    )
    def deactivate(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        # Never lock yourself out.
        count = queryset.exclude(pk=request.user.pk or 0).update(is_active=False)
        self.message_user(request, _("%(count)d users deactivated.") % {"count": count})


@admin.register(Team)
class TeamAdmin(AllTenantsOnlyAdmin):
    list_display = ["name", "kind", "tenant", "lead"]
    list_filter = ["kind", "tenant"]
    search_fields = ["name"]
    autocomplete_fields = ["tenant", "lead"]
    list_select_related = ["tenant", "lead"]


class AgentLanguageInline(admin.TabularInline):  # type: ignore[type-arg]
    model = AgentLanguage
    extra = 0


class AgentChannelInline(admin.TabularInline):  # type: ignore[type-arg]
    model = AgentChannel
    extra = 0


class TenantAuthorisationForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = TenantAuthorisation
        fields = ["agent", "tenant", "skills", "note"]

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        tenant, skills = cleaned.get("tenant"), cleaned.get("skills") or []
        foreign = [str(skill) for skill in skills if tenant is not None and skill.tenant_id != tenant.pk]
        if foreign:
            self.add_error("skills", _("These skills belong to another tenant: %s.") % ", ".join(foreign))
        return cleaned


class TenantAuthorisationInline(TenantScopedInline):
    model = TenantAuthorisation
    form = TenantAuthorisationForm
    fields = ["tenant", "skills", "note"]
    autocomplete_fields = ["tenant", "skills"]


class ShiftInline(admin.TabularInline):  # type: ignore[type-arg]
    model = Shift
    fields = ["starts_at", "ends_at", "note"]
    extra = 0
    ordering = ["-starts_at"]


class AgentForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = Agent
        fields = ["user", "team", "presence", "accepts_offers"]


def _agents_visible_to(request: HttpRequest) -> QuerySet[Agent]:
    """The agents authorised for a tenant the user sees (every agent for those who see every tenant)."""
    if sees_all_tenants(request):
        return Agent.objects.all()
    return Agent.objects.filter(
        pk__in=TenantAuthorisation.objects.visible_to(request.user).values("agent_id")
    )


@admin.register(Agent)
class AgentAdmin(GlobalWritesMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    """Everyone with admin access sees the agents working their tenants; only global admins edit them."""

    form = AgentForm
    list_display = [
        "__str__",
        "team",
        "presence",
        "presence_source",
        "presence_changed_at",
        "heartbeat_at",
        "tenant_list",
        "language_list",
    ]
    # Kept by the presence rules (heartbeats, the sweep): shown, never edited here.
    readonly_fields = ["presence_source", "presence_changed_at", "heartbeat_at"]
    list_filter = [
        "presence",
        ("team", ScopedRelatedFieldListFilter),
        "team__kind",
        "channels__channel",
        "languages__language",
    ]
    search_fields = ["user__email", "user__full_name"]
    autocomplete_fields = ["user", "team"]
    inlines = [AgentLanguageInline, AgentChannelInline, TenantAuthorisationInline, ShiftInline]
    actions = ["set_offline"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Agent]:
        # An agent may work for tenants the user does not see: those authorisations stay hidden.
        authorisations = TenantAuthorisation.objects.visible_to(request.user).select_related("tenant")
        agents = (
            super()
            .get_queryset(request)
            .select_related("user", "team")
            .prefetch_related("languages", Prefetch("authorisations", queryset=authorisations))
        )
        if sees_all_tenants(request):
            return agents
        return agents.filter(pk__in=authorisations.values("agent_id"))

    def save_model(self, request: HttpRequest, obj: Agent, form: Any, change: bool) -> None:
        # Presence changes go through the service, whose signal lets routing react (an agent set
        # offline gets their unstarted work taken back; one set online is offered work). A presence
        # chosen here is a choice by hand: heartbeats do not undo it.
        wanted = obj.presence
        obj.presence = form.initial.get("presence", Presence.OFFLINE) if change else Presence.OFFLINE
        super().save_model(request, obj, form, change)
        if wanted != obj.presence:
            agent_set_presence(agent=obj, presence=wanted, source=PresenceSource.MANUAL)

    @admin.display(description=_("tenants"))
    def tenant_list(self, agent: Agent) -> str:
        return ", ".join(sorted(a.tenant.code for a in agent.authorisations.all()))

    @admin.display(description=_("languages"))
    def language_list(self, agent: Agent) -> str:
        return ", ".join(
            f"{lang.language} {lang.get_proficiency_display().split()[0]}" for lang in agent.languages.all()
        )

    @admin.action(description=_("Set selected agents offline"), permissions=["change"])
    def set_offline(self, request: HttpRequest, queryset: QuerySet[Agent]) -> None:
        # One by one through the service, so that routing takes back each agent's unstarted work.
        count = 0
        for agent in queryset.exclude(presence=Presence.OFFLINE).order_by("pk"):
            with transaction.atomic():
                agent_set_presence(agent=agent, presence=Presence.OFFLINE, source=PresenceSource.MANUAL)
            count += 1
        self.message_user(request, _("%(count)d agents set offline.") % {"count": count})


@admin.register(Shift)
class ShiftAdmin(GlobalWritesMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    """Shifts of the agents the user sees (like the agents' page); planning them is for those who
    see every tenant, as an agent's shift binds them for all their tenants."""

    list_display = ["agent", "starts_at", "ends_at", "note"]
    list_filter = ["starts_at", ("agent__team", ScopedRelatedFieldListFilter)]
    search_fields = ["agent__user__email", "agent__user__full_name", "note"]
    autocomplete_fields = ["agent"]
    list_select_related = ["agent__user"]
    ordering = ["-starts_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Shift]:
        shifts: QuerySet[Shift] = super().get_queryset(request)
        if sees_all_tenants(request):
            return shifts
        return shifts.filter(agent__in=_agents_visible_to(request))

    def formfield_for_foreignkey(
        self, db_field: ForeignKey[Any, Any], request: HttpRequest, **kwargs: Any
    ) -> Any:
        if db_field.name == "agent":
            kwargs["queryset"] = _agents_visible_to(request).select_related("user")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(Skill)
class SkillAdmin(TenantScopedAdmin):
    list_display = ["name", "code", "tenant"]
    list_filter = ["tenant"]
    search_fields = ["name", "code", "tenant__name"]
    autocomplete_fields = ["tenant"]
    list_select_related = ["tenant"]


@admin.register(TenantAuthorisation)
class TenantAuthorisationAdmin(GlobalWritesMixin, TenantScopedAdmin):
    """Supervisors see who works their tenants; granting access is for those who see every tenant."""

    form = TenantAuthorisationForm
    list_display = ["agent", "tenant", "note", "created_at"]
    list_filter = ["tenant"]
    search_fields = ["agent__user__email", "agent__user__full_name", "tenant__name"]
    autocomplete_fields = ["agent", "tenant", "skills"]
    list_select_related = ["agent__user", "tenant"]
