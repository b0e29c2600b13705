"""The demo's telephony: its phone lines, call codes, campaigns and service-level targets, and the
replay of yesterday's calls (``care.demo.calls``) through the phone pipeline."""

from __future__ import annotations

import datetime as dt

from care.calls.models import CallCode, Campaign, PhoneLine, Provider, ServiceLevelTarget
from care.calls.services import call_event_apply
from care.demo.calls import demo_call_events, to_call_event
from care.demo.data import CALL_CODES, CAMPAIGNS, PHONE_LINES, SERVICE_LEVEL_TARGETS, PhoneLineSpec
from care.tenants.models import Tenant


def demo_phone_token(spec: PhoneLineSpec) -> str:
    # Published in the README like the mail token, so that anyone can post events with curl.
    return f"demo-{spec.tenant.lower()}-phone"


def ensure_phone(tenants: dict[str, Tenant]) -> dict[str, PhoneLine]:
    """The lines of ``PHONE_LINES`` (by number), the tenants' call codes, campaigns and service level
    targets, checked by the rules the admin applies (``full_clean``). Every run sets them as the
    tables say."""
    lines: dict[str, PhoneLine] = {}
    for spec in PHONE_LINES:
        line = PhoneLine.objects.filter(number=spec.number).first() or PhoneLine(number=spec.number)
        line.tenant, line.name, line.provider = tenants[spec.tenant], spec.name, Provider.GENERIC
        line.inbound_token = demo_phone_token(spec)
        line.signing_secret = ""  # the demo's events are not signed
        line.ivr_menu = {str(digit): {"language": code} for digit, code in enumerate(spec.ivr, start=1)}
        line.default_language, line.is_active = spec.ivr[0], True
        line.full_clean()
        line.save()
        lines[spec.number] = line
    for code, kind, slug, label, is_sale in CALL_CODES:
        CallCode.objects.update_or_create(
            tenant=tenants[code],
            kind=kind,
            code=slug,
            defaults={"label": label, "is_sale": is_sale, "is_active": True},
        )
    for code, name in CAMPAIGNS:
        Campaign.objects.update_or_create(tenant=tenants[code], name=name, defaults={"is_active": True})
    for code, within, percent, short in SERVICE_LEVEL_TARGETS:
        ServiceLevelTarget.objects.update_or_create(
            tenant=tenants[code],
            defaults={"answered_within_seconds": within, "percent": percent, "short_abandon_seconds": short},
        )
    return lines


def replay_call_day(lines: dict[str, PhoneLine], now: dt.datetime) -> int:
    """Apply yesterday's demo call events through the phone pipeline; returns how many were new
    (none on a second run the same day: the pipeline recognises every event it has seen)."""
    return sum(
        call_event_apply(line=lines[event["dialled"]], event=to_call_event(event)).applied
        for event in demo_call_events(now)
    )
