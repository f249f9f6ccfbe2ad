"""MariaDB: its spec, its guest driver (PyMySQL) and its backup engine (mariadb-backup)."""
