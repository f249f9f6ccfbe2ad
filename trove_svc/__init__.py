"""trove-svc: a Database-as-a-Service in the mould of OpenStack Trove, built on Ansible."""
