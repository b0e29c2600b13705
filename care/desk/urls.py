from __future__ import annotations

from django.urls import path

from care.desk import queue_page, views, work_page

app_name = "desk"

urlpatterns = [
    path("", views.home, name="home"),
    path("me/", views.my_tenants, name="my_tenants"),
    path("desk/work/", work_page.page, name="my_work"),
    path("desk/queue/", queue_page.page, name="queue"),
    path("desk/tickets/<str:reference>/", views.ticket, name="ticket"),
    path("desk/tickets/<str:reference>/entries", views.ticket_entries, name="ticket_entries"),
    path("desk/tickets/<str:reference>/reply", views.ticket_reply, name="ticket_reply"),
    path("desk/tickets/<str:reference>/note", views.ticket_note, name="ticket_note"),
]
