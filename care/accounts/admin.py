from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import UserChangeForm as DjangoUserChangeForm
from django.contrib.auth.forms import UserCreationForm as DjangoUserCreationForm
from django.db.models import Prefetch, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from care.accounts.models import (
    Agent,
    AgentChannel,
    AgentLanguage,
    Presence,
    Skill,
    Team,
    TenantAuthorisation,
    User,
)
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


class AgentForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = Agent
        fields = ["user", "team", "presence"]


@admin.register(Agent)
class AgentAdmin(GlobalWritesMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    """Everyone with admin access sees the agents working their tenants; only global admins edit them."""

    form = AgentForm
    list_display = ["__str__", "team", "presence", "presence_changed_at", "tenant_list", "language_list"]
    list_filter = [
        "presence",
        ("team", ScopedRelatedFieldListFilter),
        "team__kind",
        "channels__channel",
        "languages__language",
    ]
    search_fields = ["user__email", "user__full_name"]
    autocomplete_fields = ["user", "team"]
    inlines = [AgentLanguageInline, AgentChannelInline, TenantAuthorisationInline]
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
        count = queryset.exclude(presence=Presence.OFFLINE).update(
            presence=Presence.OFFLINE, presence_changed_at=timezone.now()
        )
        self.message_user(request, _("%(count)d agents set offline.") % {"count": count})


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
