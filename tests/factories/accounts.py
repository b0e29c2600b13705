from __future__ import annotations

import factory

from care.accounts.models import Agent, AgentChannel, AgentLanguage, Role, Team, TenantAuthorisation, User
from care.core.channels import Channel
from care.core.languages import Proficiency

PASSWORD = "correct horse battery staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ["email"]
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@care.test")
    full_name = factory.Sequence(lambda n: f"User {n}")
    role = Role.AGENT
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def save_password(obj, create, extracted, **kwargs):  # noqa: N805
        if create:
            obj.save()


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team
        django_get_or_create = ["name"]

    name = factory.Sequence(lambda n: f"Provider team {n}")
    kind = Team.Kind.PROVIDER


class AgentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Agent

    user = factory.SubFactory(UserFactory)
    team = factory.SubFactory(TeamFactory)


def make_agent(
    *,
    tenants=(),
    languages=(("de", Proficiency.NATIVE),),
    channels=tuple(Channel.values),
    role=Role.AGENT,
    is_staff=False,
    email=None,
    team=None,
) -> Agent:
    """An agent authorised for ``tenants``, speaking ``languages`` and working ``channels``."""
    user_kwargs = {"role": role, "is_staff": is_staff}
    if email:
        user_kwargs["email"] = email
    agent = AgentFactory(user=UserFactory(**user_kwargs), **({"team": team} if team else {}))
    for code, level in languages:
        AgentLanguage.objects.create(agent=agent, language=code, proficiency=level)
    for channel in channels:
        AgentChannel.objects.create(
            agent=agent, channel=channel, capacity=AgentChannel.DEFAULT_CAPACITY[channel]
        )
    for tenant in tenants:
        TenantAuthorisation.objects.create(agent=agent, tenant=tenant)
    return agent
