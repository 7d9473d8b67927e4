"""Token expiry, revocation announced to every service process, reversible project deletes.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE geoservice.api_token ADD COLUMN expires_at timestamptz;
        -- Any change to a token (revocation, expiry, deletion), from the CLI, the API or SQL,
        -- tells every listening service process to forget the tokens it has confirmed.
        CREATE FUNCTION geoservice.announce_token_change() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                PERFORM pg_notify('geoservice_tokens', '');
                RETURN NULL;
            END $$;
        CREATE TRIGGER api_token_changed
            AFTER UPDATE OR DELETE ON geoservice.api_token
            FOR EACH STATEMENT EXECUTE FUNCTION geoservice.announce_token_change();
        ALTER TABLE geoservice.restoration_project_history
            DROP CONSTRAINT restoration_project_history_change_check,
            ADD CONSTRAINT restoration_project_history_change_check
                CHECK (change IN ('create', 'update', 'delete', 'restore'));
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DELETE FROM geoservice.restoration_project_history WHERE change = 'restore';
        ALTER TABLE geoservice.restoration_project_history
            DROP CONSTRAINT restoration_project_history_change_check,
            ADD CONSTRAINT restoration_project_history_change_check
                CHECK (change IN ('create', 'update', 'delete'));
        DROP TRIGGER api_token_changed ON geoservice.api_token;
        DROP FUNCTION geoservice.announce_token_change();
        ALTER TABLE geoservice.api_token DROP COLUMN expires_at;
        """
    )
