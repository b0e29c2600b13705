"""``manage.py import_cdr --format asterisk FILE --line +E164``: import a PBX's call detail records.

The file is stored raw first (source "cli", its name as the reference), then parsed, parallel legs
collapsed, and every call's events applied through ``care.calls.services.call_event_apply``. Events
are recognised by their ids, so importing the same file again changes nothing (docs/phone.md).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from django.core.management.base import BaseCommand, CommandError, CommandParser

from care.calls.models import PhoneLine
from care.connectors.dispatch import process_stored
from care.connectors.models import InboundMessage, InboundSource, InboundStatus
from care.connectors.phone.ingest import PROVIDER_ASTERISK_CDR, phone_reapply, phone_receive

FORMATS = {"asterisk": PROVIDER_ASTERISK_CDR}


class Command(BaseCommand):
    help = "Import call detail records (Asterisk Master.csv) into the calls of one phone line."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="The CDR file to read.")
        parser.add_argument(
            "--format", required=True, help="The file's format: asterisk (cdr_csv Master.csv)."
        )
        parser.add_argument(
            "--line", required=True, help="The phone line's number in E.164, e.g. +493012345678."
        )
        parser.add_argument(
            "--time-zone", dest="time_zone", default="", help="The PBX's time zone. Default: the client's."
        )
        parser.add_argument(
            "--region", default="", help="Country for national-format numbers, e.g. DE or US."
        )
        parser.add_argument("--force", action="store_true", help="Apply an already imported file again.")
        parser.add_argument("--json", action="store_true", help="Print the summary as one JSON object.")

    def handle(self, *args: Any, **options: Any) -> None:
        provider = FORMATS.get(options["format"])
        if provider is None:
            raise CommandError(f"Unknown format {options['format']!r}; known: {', '.join(sorted(FORMATS))}.")
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        line = (
            PhoneLine.objects.select_related("tenant").filter(number=options["line"], is_active=True).first()
        )
        if line is None:
            raise CommandError(f"No active phone line has the number {options['line']} (write it in E.164).")
        time_zone, region = options["time_zone"], options["region"].upper()
        if time_zone:
            try:
                ZoneInfo(time_zone)
            except (ZoneInfoNotFoundError, ValueError) as error:
                raise CommandError(
                    f"Unknown time zone {time_zone!r} (use an IANA name such as Europe/Berlin)."
                ) from error
        if region and region not in phonenumbers.SUPPORTED_REGIONS:
            raise CommandError(f"Unknown region {region!r} (use an ISO 3166 code such as DE).")
        message, created = phone_receive(
            line=line,
            provider=provider,
            raw=path.read_bytes(),
            source=InboundSource.CLI,
            source_ref=path.name,
            time_zone=time_zone,
            region=region,
        )
        duplicate = not created and message.status == InboundStatus.PROCESSED
        if duplicate and options["force"]:
            message = phone_reapply(message=message)
        elif not duplicate:
            message = process_stored(message.pk) or message
        self._report(path.name, message, duplicate=duplicate, as_json=options["json"])
        if message.status == InboundStatus.FAILED:
            raise CommandError(f"The import failed: {message.error} (the file is stored; fix and run again).")
        errors = (message.summary or {}).get("errors") or []
        if errors:
            raise CommandError(f"{len(errors)} row(s) could not be imported; the others were.")

    def _report(self, name: str, message: InboundMessage, *, duplicate: bool, as_json: bool) -> None:
        summary = message.summary or {}
        row = {
            "file": name,
            "id": message.pk,
            "status": "failed"
            if message.status == InboundStatus.FAILED
            else ("already imported" if duplicate else "imported"),
            "rows": summary.get("rows", 0),
            "calls": len(summary.get("calls", [])),
            "applied": summary.get("applied", 0),
            "duplicates": summary.get("duplicates", 0),
            "errors": summary.get("errors", []),
            "error": message.error or None,
        }
        if as_json:
            self.stdout.write(json.dumps(row, ensure_ascii=False))
            return
        if duplicate:
            self.stdout.write(f"{name}: already imported (stored message {message.pk}); nothing changes.")
        self.stdout.write(
            f"{name}: {row['status']}: {row['rows']} rows, {row['calls']} calls, "
            f"{row['applied']} events applied, {row['duplicates']} duplicates, {len(row['errors'])} errors"
        )
        for error in row["errors"]:
            self.stdout.write(f"  {error}")
        if message.error:
            self.stdout.write(f"  {message.error}")
