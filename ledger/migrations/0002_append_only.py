"""Append-only guard on PostgreSQL: a trigger refuses UPDATE, DELETE and TRUNCATE on entries, tree nodes and
checkpoints. Elsewhere (SQLite) this migration does nothing; the models refuse changes there.

TRUNCATE is let through only in a session that has set `tanhui.ledger_truncate = 'allow'`, which the test suite
sets so that Django can empty the test database between transactional tests. Anyone who can set that can also
disable the trigger; the trigger stops mistakes, while tampering is caught by `manage.py verify_ledger`.
"""

from django.db import migrations

TABLES = ("ledger_entry", "ledger_treenode", "ledger_checkpoint")

FUNCTION = """
CREATE OR REPLACE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' AND current_setting('tanhui.ledger_truncate', true) = 'allow' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'ledger table % is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$;
"""


def install(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(FUNCTION, params=None)  # no interpolation: RAISE uses % placeholders
    for table in TABLES:
        schema_editor.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                              "FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()")
        schema_editor.execute(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                              "FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change()")


def uninstall(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in TABLES:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
    schema_editor.execute("DROP FUNCTION IF EXISTS ledger_refuse_change()")


def create_head(apps, schema_editor):
    apps.get_model("ledger", "LogHead").objects.get_or_create(pk=1)


class Migration(migrations.Migration):
    dependencies = [("ledger", "0001_initial")]

    operations = [
        migrations.RunPython(install, uninstall),
        migrations.RunPython(create_head, migrations.RunPython.noop),
    ]
