"""The ledger's reference to its user: triggers in place of the foreign-key constraint, the same guarantee.

The constraint checked every inserted ledger row with a query of its own (PostgreSQL's referential-integrity trigger
runs per row): a fifth of the server time of a backfill chunk's insert. Instead:

* one statement-level AFTER INSERT / UPDATE trigger on the ledger, with a transition table, key-share locks the users
  the statement's rows name (in id order, the locks the constraint took) and fails with a foreign-key violation
  (SQLSTATE 23503, an IntegrityError as before) when one of them does not exist; the lock makes a concurrent delete
  of that user wait for this transaction, and a delete that committed first is seen by the existence check;
* a row-level AFTER DELETE / UPDATE OF id trigger on the users refuses to remove a user the ledger names (Django's
  PROTECT refuses it first in Python; this is the database's own guarantee, for raw SQL).

Both fire at the end of the statement; the constraint was deferred to COMMIT, which nothing relied on (the
poison-row isolation even made it immediate, to fail inside the savepoint of the rows that caused it).
"""

from django.conf import settings
from django.db import migrations, models

LEDGER = "activity_useractivity"


def _sql(users: str, users_name: str) -> tuple[str, str]:
    """(forward, backward) SQL; `users` is the users table quoted, `users_name` its name."""
    forward = f"""
CREATE FUNCTION activity_ledger_users_exist() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    missing bigint;
BEGIN
    PERFORM 1 FROM {users} u WHERE u.id IN (SELECT DISTINCT n.user_id FROM new_rows n) ORDER BY u.id FOR KEY SHARE;
    SELECT n.user_id INTO missing FROM new_rows n
    WHERE NOT EXISTS (SELECT 1 FROM {users} u WHERE u.id = n.user_id) LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'insert or update on table "{LEDGER}" names user %, which does not exist', missing
            USING ERRCODE = 'foreign_key_violation', TABLE = '{LEDGER}', COLUMN = 'user_id';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER activity_ledger_users_exist_on_insert AFTER INSERT ON {LEDGER}
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION activity_ledger_users_exist();
CREATE TRIGGER activity_ledger_users_exist_on_update AFTER UPDATE ON {LEDGER}
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION activity_ledger_users_exist();

CREATE FUNCTION activity_ledger_users_kept() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM {LEDGER} a WHERE a.user_id = OLD.id) THEN
        RAISE EXCEPTION 'user % is still named by table "{LEDGER}"', OLD.id
            USING ERRCODE = 'foreign_key_violation', TABLE = '{users_name}';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER activity_ledger_users_kept_on_delete AFTER DELETE ON {users}
    FOR EACH ROW EXECUTE FUNCTION activity_ledger_users_kept();
CREATE TRIGGER activity_ledger_users_kept_on_update AFTER UPDATE OF id ON {users}
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id) EXECUTE FUNCTION activity_ledger_users_kept();
"""
    backward = f"""
DROP TRIGGER IF EXISTS activity_ledger_users_exist_on_insert ON {LEDGER};
DROP TRIGGER IF EXISTS activity_ledger_users_exist_on_update ON {LEDGER};
DROP FUNCTION IF EXISTS activity_ledger_users_exist();
DROP TRIGGER IF EXISTS activity_ledger_users_kept_on_delete ON {users};
DROP TRIGGER IF EXISTS activity_ledger_users_kept_on_update ON {users};
DROP FUNCTION IF EXISTS activity_ledger_users_kept();
"""
    return forward, backward


def _statements(apps, schema_editor) -> tuple[str, str]:
    name = apps.get_model(settings.AUTH_USER_MODEL)._meta.db_table
    return _sql(schema_editor.quote_name(name), name)


# params=None: the SQL goes as written (the RAISE messages' % are PL/pgSQL's placeholders, not the driver's).
def forward(apps, schema_editor) -> None:
    schema_editor.execute(_statements(apps, schema_editor)[0], None)


def backward(apps, schema_editor) -> None:
    schema_editor.execute(_statements(apps, schema_editor)[1], None)


class Migration(migrations.Migration):
    dependencies = [
        ("activity", "0014_source_change_log"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RunPython(forward, backward),
        migrations.AlterField(
            model_name="useractivity",
            name="user",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=models.deletion.PROTECT,
                related_name="activities",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
    ]
