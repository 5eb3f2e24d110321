"""PostgreSQL: engines and sessions, common columns, migrations, sealing."""
