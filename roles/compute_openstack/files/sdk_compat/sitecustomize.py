"""Put back `openstack.version`, which openstacksdk stopped importing in 4.15 and the
openstack.cloud modules (2.5, as the ansible 12 package carries them) still read.

Only the role's OpenStack tasks load this (through PYTHONPATH); drop it once the modules
no longer read openstack.version.
"""

import contextlib
import warnings

with contextlib.suppress(ImportError), warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import openstack.version  # noqa: F401
