"""PostgreSQL persistence for the Brain: connection, embedded server, migrations and the API."""
