from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations


class Migration(migrations.Migration):
    """PostgreSQL extensions Care relies on: pg_trgm for fast substring search on names."""

    dependencies: list[tuple[str, str]] = []

    operations = [TrigramExtension()]
