"""``manage.py seed_demo``: load the demo data (idempotent). The work is in care.demo."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from care.demo.build import seed_demo


class Command(BaseCommand):
    help = "Create the demo tenants, agents, customers and tickets, and reset the demo logins. Idempotent."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--force",
            action="store_true",
            help="Run even though DEBUG is off (the demo logins have published passwords).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG and not options["force"]:
            raise CommandError(
                "seed_demo creates logins with published passwords; it runs only with DJANGO_DEBUG=1 "
                "(or --force on a machine that is not reachable by others)."
            )
        started = time.monotonic()
        summary = seed_demo(calls=True, social=True)  # phone calls (care/demo/calls.py), social (social.py)
        elapsed = time.monotonic() - started
        for label, count in summary.counts.items():
            self.stdout.write(f"  {label:<14} {count:>6}")
        self.stdout.write(
            f"  demo tickets: {summary.tickets_created} created, {summary.tickets_found} already there"
        )
        self.stdout.write(self.style.SUCCESS(f"Demo data ready in {elapsed:.1f} s."))
