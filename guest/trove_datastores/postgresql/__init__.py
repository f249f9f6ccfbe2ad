"""PostgreSQL: its spec, its guest driver (psycopg) and its backup engine (pgBackRest)."""
