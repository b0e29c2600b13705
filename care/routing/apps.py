from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RoutingConfig(AppConfig):
    name = "care.routing"
    label = "routing"
    verbose_name = _("Routing")

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from care.accounts.models import Skill, Team
        from care.routing import receivers  # noqa: F401 - connects the signal receivers
        from care.routing.models import RoutingQueue, RoutingStep
        from care.routing.rules import RULES_MEMO

        for model in (RoutingQueue, RoutingStep, Team, Skill):
            post_save.connect(RULES_MEMO.clear, sender=model, dispatch_uid=f"rules_memo_{model.__name__}")
            post_delete.connect(RULES_MEMO.clear, sender=model, dispatch_uid=f"rules_memo_d_{model.__name__}")
