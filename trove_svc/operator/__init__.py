"""What an operator runs on the service's host: the `trove-svc` command, set-up,
tokens and the audit trail, following a task."""
