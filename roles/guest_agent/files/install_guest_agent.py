"""Install the guest agent from a directory of wheels into a virtual environment of its own.

    python3 install_guest_agent.py VENV WHEELS VERSION

Several builds on one host may install at once: they take turns (a lock beside the
environment), and one that finds VERSION installed does nothing. A new VERSION is installed
over the old one in place, as a package upgrade is: running agents keep what they loaded.
Prints "installed" or "already installed".
"""

import fcntl
import subprocess
import sys
import venv
from pathlib import Path


def main() -> None:
    environment, wheels, version = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    marker = environment / f".trove-guest-{version}"
    environment.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{environment}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists():
            print("already installed")
            return
        if not (environment / "bin" / "python").exists():
            venv.EnvBuilder(with_pip=True).create(environment)
        subprocess.run(
            [str(environment / "bin" / "python"), "-m", "pip", "install", "--quiet",
             "--no-index", "--find-links", str(wheels), "--force-reinstall", "trove-guest"],
            check=True,
        )
        for old in environment.glob(".trove-guest-*"):
            old.unlink()
        marker.write_text(version + "\n")
        print("installed")


if __name__ == "__main__":
    main()
