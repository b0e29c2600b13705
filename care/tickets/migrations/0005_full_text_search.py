"""Full-text search over tickets and their timelines (docs/search.md).

- ``care_search_config(language)``: the PostgreSQL text-search configuration for a ticket's ISO 639-1
  language (``de`` → german, unknown → simple). IMMUTABLE, so it can feed a generated column.
- ``tickets_ticket.search_vector``: a stored generated column over the subject in the ticket's
  configuration; every writer (ORM, bulk SQL, COPY) fills it without knowing about it.
- ``tickets_interaction.search_vector``: the entry's ``body_text`` (what is new, not the quoted
  history) in its ticket's configuration. A generated column cannot read the ticket row, so a
  BEFORE trigger fills it; a trigger on the ticket re-indexes its timeline when its language changes.
- GIN indexes on (tenant_id, vector) for both (btree_gin: one index lookup finds one tenant's rows
  with a word, however big the tenant), a larger statistics target for the vectors (better word
  frequency estimates), and b-tree indexes (tenant, id) / (tenant, status, id) on tickets that let a
  search check one tenant's newest tickets first (declared on the model, so Django knows them).

The vectors are not model fields: the ORM never reads or writes them, only ``care.tickets.search``.
"""

from django.contrib.postgres.operations import BtreeGinExtension
from django.db import migrations, models

CONFIG_FUNCTION = """
CREATE OR REPLACE FUNCTION care_search_config(language text) RETURNS regconfig
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $$
    SELECT CASE lower(split_part(language, '-', 1))
        WHEN 'da' THEN 'pg_catalog.danish'::regconfig
        WHEN 'de' THEN 'pg_catalog.german'::regconfig
        WHEN 'en' THEN 'pg_catalog.english'::regconfig
        WHEN 'es' THEN 'pg_catalog.spanish'::regconfig
        WHEN 'fi' THEN 'pg_catalog.finnish'::regconfig
        WHEN 'fr' THEN 'pg_catalog.french'::regconfig
        WHEN 'hu' THEN 'pg_catalog.hungarian'::regconfig
        WHEN 'it' THEN 'pg_catalog.italian'::regconfig
        WHEN 'nb' THEN 'pg_catalog.norwegian'::regconfig
        WHEN 'nl' THEN 'pg_catalog.dutch'::regconfig
        WHEN 'no' THEN 'pg_catalog.norwegian'::regconfig
        WHEN 'nn' THEN 'pg_catalog.norwegian'::regconfig
        WHEN 'pt' THEN 'pg_catalog.portuguese'::regconfig
        WHEN 'ro' THEN 'pg_catalog.romanian'::regconfig
        WHEN 'ru' THEN 'pg_catalog.russian'::regconfig
        WHEN 'sv' THEN 'pg_catalog.swedish'::regconfig
        WHEN 'tr' THEN 'pg_catalog.turkish'::regconfig
        ELSE 'pg_catalog.simple'::regconfig
    END
$$;
"""

TICKET_COLUMN = """
ALTER TABLE tickets_ticket ADD COLUMN search_vector tsvector GENERATED ALWAYS AS (
    to_tsvector(care_search_config(language), subject)
) STORED;
ALTER TABLE tickets_ticket ALTER COLUMN search_vector SET STATISTICS 1000;
CREATE INDEX tickets_ticket_search_gin ON tickets_ticket USING gin (tenant_id, search_vector);
"""

INTERACTION_COLUMN = """
ALTER TABLE tickets_interaction ADD COLUMN search_vector tsvector;

CREATE FUNCTION tickets_interaction_search_vector() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.search_vector := to_tsvector(
        coalesce(care_search_config((SELECT language FROM tickets_ticket WHERE id = NEW.ticket_id)),
                 'pg_catalog.simple'::regconfig),
        NEW.body_text
    );
    RETURN NEW;
END
$$;
CREATE TRIGGER tickets_interaction_search_vector
    BEFORE INSERT OR UPDATE OF body_text, ticket_id ON tickets_interaction
    FOR EACH ROW EXECUTE FUNCTION tickets_interaction_search_vector();

CREATE FUNCTION tickets_ticket_language_reindex() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE tickets_interaction
    SET search_vector = to_tsvector(care_search_config(NEW.language), body_text)
    WHERE ticket_id = NEW.id;
    RETURN NULL;
END
$$;
CREATE TRIGGER tickets_ticket_language_reindex
    AFTER UPDATE OF language ON tickets_ticket
    FOR EACH ROW WHEN (OLD.language IS DISTINCT FROM NEW.language)
    EXECUTE FUNCTION tickets_ticket_language_reindex();

UPDATE tickets_interaction i
SET search_vector = to_tsvector(care_search_config(t.language), i.body_text)
FROM tickets_ticket t WHERE t.id = i.ticket_id;

ALTER TABLE tickets_interaction ALTER COLUMN search_vector SET STATISTICS 1000;
CREATE INDEX tickets_interaction_search_gin ON tickets_interaction USING gin (tenant_id, search_vector);
"""

REVERSE = """
DROP TRIGGER IF EXISTS tickets_ticket_language_reindex ON tickets_ticket;
DROP FUNCTION IF EXISTS tickets_ticket_language_reindex();
DROP TRIGGER IF EXISTS tickets_interaction_search_vector ON tickets_interaction;
DROP FUNCTION IF EXISTS tickets_interaction_search_vector();
ALTER TABLE tickets_interaction DROP COLUMN IF EXISTS search_vector;
ALTER TABLE tickets_ticket DROP COLUMN IF EXISTS search_vector;
DROP FUNCTION IF EXISTS care_search_config(text);
"""


class Migration(migrations.Migration):
    dependencies = [
        ("tickets", "0004_ticket_merge"),
    ]

    operations = [
        BtreeGinExtension(),
        migrations.RunSQL(CONFIG_FUNCTION + TICKET_COLUMN + INTERACTION_COLUMN, REVERSE),
        migrations.AddIndex(
            model_name="ticket",
            index=models.Index(fields=["tenant", "id"], name="tickets_tenant_id"),
        ),
        migrations.AddIndex(
            model_name="ticket",
            index=models.Index(fields=["tenant", "status", "id"], name="tickets_tenant_status_id"),
        ),
    ]
