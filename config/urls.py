"""Top-level URLs. Each app that serves pages or an API mounts its own ``urls.py`` here."""

from __future__ import annotations

from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.urls import include, path
from django.utils.translation import gettext_lazy as _

from care.core import views as core_views

admin.site.site_header = _("Care administration")
admin.site.site_title = _("Care")
admin.site.index_title = _("Service center administration")

urlpatterns = [
    path("", include("care.desk.urls")),
    path("accounts/", include("django.contrib.auth.urls")),
    path("healthz", core_views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/", include("care.api_urls")),
    path("inbound/", include("care.connectors.urls")),
]

if settings.DEBUG:
    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
