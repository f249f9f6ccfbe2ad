"""The datastores, one sub-package each: `spec` (what the registry knows of it, standard
library only), `driver` (the guest's driver) and, with backups, `backup` (its engine).

`trove_wire.datastores.REGISTRY` holds every sub-package here; adding a folder registers
it (`docs/adding-a-datastore.md`). Beside them, what the specs are made of: `base` (the
spec's fields) and `throwaway` (a private server to read an engine's parameters from). They
live here, not with the registry, so that a spec imports nothing that imports every spec.
"""
