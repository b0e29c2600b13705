from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MentionsConfig(AppConfig):
    name = "care.mentions"
    label = "mentions"
    verbose_name = _("Mentions")
