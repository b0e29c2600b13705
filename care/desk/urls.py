from __future__ import annotations

from django.urls import path

from care.desk import views

app_name = "desk"

urlpatterns = [
    path("", views.home, name="home"),
    path("me/", views.my_tenants, name="my_tenants"),
]
