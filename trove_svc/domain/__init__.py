"""The DBaaS's own objects and rules: instances, backups, configuration groups,
replication sets, tasks and their states. No HTTP and no Ansible here; work is handed to
the task managers through the bus's client, by `tasks.starting` alone."""
