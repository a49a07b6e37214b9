from django.db import migrations

# A player is never both a solo entrant and an active member of a team entrant in one tournament (a match between
# the two would count them as winner and loser at once). Checked on both sides that can create the overlap: a
# registration written (solo or team) and a membership made active. Cancelled registrations do not count.
EXCLUSIVE_SQL = """
CREATE FUNCTION tournaments_registration_exclusive() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    clash bigint;
BEGIN
    IF NEW.status = 'cancelled' THEN
        RETURN NEW;
    END IF;
    IF NEW.user_id IS NOT NULL THEN
        SELECT r.team_id INTO clash FROM tournaments_registration r
            JOIN teams_teammembership m ON m.team_id = r.team_id AND m.left_at IS NULL AND m.user_id = NEW.user_id
            WHERE r.tournament_id = NEW.tournament_id AND r.team_id IS NOT NULL AND r.status <> 'cancelled' LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'user % cannot enter tournament % solo: they are a member of entered team %', NEW.user_id, NEW.tournament_id, clash
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
    ELSIF NEW.team_id IS NOT NULL THEN
        SELECT r.user_id INTO clash FROM tournaments_registration r
            JOIN teams_teammembership m ON m.user_id = r.user_id AND m.left_at IS NULL AND m.team_id = NEW.team_id
            WHERE r.tournament_id = NEW.tournament_id AND r.user_id IS NOT NULL AND r.status <> 'cancelled' LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'team % cannot enter tournament %: its member % is entered solo', NEW.team_id, NEW.tournament_id, clash
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER tournaments_registration_exclusive BEFORE INSERT OR UPDATE ON tournaments_registration
    FOR EACH ROW EXECUTE FUNCTION tournaments_registration_exclusive();

CREATE FUNCTION teams_membership_exclusive() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    clash bigint;
BEGIN
    IF NEW.left_at IS NOT NULL THEN
        RETURN NEW;
    END IF;
    SELECT t.tournament_id INTO clash FROM tournaments_registration t
        JOIN tournaments_registration s ON s.tournament_id = t.tournament_id AND s.user_id = NEW.user_id AND s.status <> 'cancelled'
        WHERE t.team_id = NEW.team_id AND t.status <> 'cancelled' LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'user % cannot be an active member of team %: both are entered in tournament %', NEW.user_id, NEW.team_id, clash
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER teams_membership_exclusive BEFORE INSERT OR UPDATE ON teams_teammembership
    FOR EACH ROW EXECUTE FUNCTION teams_membership_exclusive();
"""
DROP_SQL = """
DROP TRIGGER IF EXISTS tournaments_registration_exclusive ON tournaments_registration;
DROP FUNCTION IF EXISTS tournaments_registration_exclusive();
DROP TRIGGER IF EXISTS teams_membership_exclusive ON teams_teammembership;
DROP FUNCTION IF EXISTS teams_membership_exclusive();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("tournaments", "0001_initial"),
        ("teams", "0001_initial"),
    ]

    operations = [
        # One-element lists: the script runs as one statement without parameters (the % of plpgsql formats stays
        # literal) and is not split by sqlparse (the $$ function bodies hold semicolons).
        migrations.RunSQL([EXCLUSIVE_SQL], [DROP_SQL]),
    ]
