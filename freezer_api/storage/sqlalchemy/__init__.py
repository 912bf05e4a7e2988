"""The SQLAlchemy storage driver: SQLite, PostgreSQL and MySQL/MariaDB."""
