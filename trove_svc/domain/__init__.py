"""The DBaaS's own objects and rules: instances, backups, configuration groups,
replication sets, tasks and their states. No HTTP, no AMQP, no Ansible here."""
