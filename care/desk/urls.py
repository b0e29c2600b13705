from __future__ import annotations

from django.urls import path

from care.desk import (
    attachments,
    composer,
    queue_page,
    search_page,
    team_page,
    ticket_actions,
    views,
    wallboard_page,
    work_page,
)

app_name = "desk"

urlpatterns = [
    path("", views.home, name="home"),
    path("me/", views.my_tenants, name="my_tenants"),
    path("desk/work/", work_page.page, name="my_work"),
    path("desk/queue/", queue_page.page, name="queue"),
    path("desk/search/", search_page.page, name="search"),
    path("desk/team/", team_page.page, name="team"),
    path("desk/team/<int:agent_id>/", team_page.agent_page, name="team_agent"),
    path("desk/wallboard/", wallboard_page.page, name="wallboard"),
    path("desk/tickets/<str:reference>/", views.ticket, name="ticket"),
    path("desk/tickets/<str:reference>/entries", views.ticket_entries, name="ticket_entries"),
    path("desk/tickets/<str:reference>/reply", views.ticket_reply, name="ticket_reply"),
    path("desk/tickets/<str:reference>/note", views.ticket_note, name="ticket_note"),
    path(
        "desk/tickets/<str:reference>/macros/<int:macro_id>/render",
        composer.macro_render,
        name="macro_render",
    ),
    path("desk/tickets/<str:reference>/mentions", composer.mention_people, name="mention_suggestions"),
    path("desk/mentions/read", composer.mentions_read, name="mentions_read"),
    path("desk/attachments/<int:attachment_id>/<str:filename>", attachments.download, name="attachment"),
    path("desk/tickets/<str:reference>/actions", ticket_actions.panel, name="ticket_actions"),
    path("desk/tickets/<str:reference>/actions/<slug:action>", ticket_actions.act, name="ticket_act"),
]
