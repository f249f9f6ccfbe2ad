"""The datastores, one sub-package each: `spec` (what the registry knows of it, standard
library only), `driver` (the guest's driver) and, with backups, `backup` (its engine).

`trove_wire.datastores.REGISTRY` holds every sub-package here; adding a folder registers
it (`docs/adding-a-datastore.md`).
"""
