"""trove-svc guest agent: one process per instance, beside its datastore."""
