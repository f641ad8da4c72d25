"""The shared engine: PostgreSQL (psycopg 3), for many processes on many hosts."""

from .database import PostgresConnection, PostgresDatabase
from .dialect import PostgresDialect

__all__ = ["PostgresConnection", "PostgresDatabase", "PostgresDialect"]
