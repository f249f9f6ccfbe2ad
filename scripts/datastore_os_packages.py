"""Prints the Debian packages the registered datastores need (each spec's `os_packages`),
one a line, for scripts/bootstrap.sh to install those missing.

The bootstrap runs it on the OS's own Python, without site-packages (`-S`) and with
`PYTHONPATH=guest`, before any Python environment exists: the specs import the standard
library only, and a spec that imports more fails here first.
"""

from trove_wire import datastores

for package in sorted({p for spec in datastores.REGISTRY.values() for p in spec.os_packages}):
    print(package)
