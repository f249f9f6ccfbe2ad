"""The store: peewee models and the one place that opens the database."""
