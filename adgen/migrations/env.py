"""Alembic environment for the records: `adgen db upgrade` runs it with the configured database.

The connection comes from `adgen.records.upgrade` (config.attributes["connection"]), so the URL,
with any password in it, never passes through Alembic's ini interpolation.
"""

from alembic import context

from adgen.records import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
