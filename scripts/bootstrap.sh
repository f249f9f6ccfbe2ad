#!/usr/bin/env bash
# Make this machine ready for trove-svc: OS packages, a running RabbitMQ, and the
# Python environment in .venv. Safe to run again: it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
command -v rabbitmq-server >/dev/null || [ -x /usr/sbin/rabbitmq-server ] || missing+=(rabbitmq-server)
command -v promtool >/dev/null || missing+=(prometheus)  # promtool checks /metrics
# Backups: zstd to compress streams, ACLs to lend a restore the source's repository (each
# datastore's own backup tool is among its packages, below).
command -v zstd >/dev/null || missing+=(zstd)
command -v setfacl >/dev/null || missing+=(acl)
# Started as root, the service runs as its own account and reaches root through sudo
# (Ansible's become), in the steps that need it.
command -v sudo >/dev/null || missing+=(sudo)
# SSH host pools: the control plane's ssh client, and the tests' own pool hosts' sshd.
command -v ssh >/dev/null || missing+=(openssh-client)
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
# Backups of instances on pool hosts are copied between host and this machine by rsync
# (on both ends).
command -v rsync >/dev/null || missing+=(rsync)
# The OS's own Python: instances' accounts run the guest agent from .venv, and a Python
# under a private home (pyenv in /root, say) is out of their reach.
[ -x /usr/bin/python3 ] || missing+=(python3)
/usr/bin/python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
apt_updated=no
install_packages() {
  [ $# -gt 0 ] || return 0
  echo "bootstrap: installing $*"
  [ $apt_updated = yes ] || { as_root apt-get update -qq; apt_updated=yes; }
  # Install without starting the packages' own services (the datastores' system servers,
  # a Prometheus): trove-svc runs its own, and must not disturb a machine's.
  made_policy=no
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null
    as_root chmod +x /usr/sbin/policy-rc.d
    made_policy=yes
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null \
    || { [ $made_policy = yes ] && as_root rm -f /usr/sbin/policy-rc.d; exit 1; }
  [ $made_policy = yes ] && as_root rm -f /usr/sbin/policy-rc.d
  return 0
}
install_packages "${missing[@]}"

# The datastores' packages: each spec's os_packages, read with the OS's Python (installed
# above) from the specs alone, so a datastore's folder is the one place that names them.
installed() { [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]; }
datastore_packages=$(PYTHONPATH=guest /usr/bin/python3 -S scripts/datastore_os_packages.py)
missing=()
for package in $datastore_packages; do
  installed "$package" || missing+=("$package")
done
install_packages "${missing[@]}"

port_open() { /usr/bin/python3 - "$1" <<'PY'
import socket, sys
s = socket.socket()
s.settimeout(1)
sys.exit(0 if s.connect_ex(("127.0.0.1", int(sys.argv[1]))) == 0 else 1)
PY
}
broker_up() { port_open 5672; }
if ! broker_up; then
  echo "bootstrap: starting RabbitMQ"
  as_root rabbitmq-server -detached >/dev/null 2>&1 || as_root service rabbitmq-server start
  for _ in $(seq 1 60); do broker_up && break; sleep 1; done
  broker_up || { echo "bootstrap: RabbitMQ did not come up on 127.0.0.1:5672" >&2; exit 1; }
fi

# The management API: trove-svc makes each instance's own broker account through it.
if ! port_open 15672; then
  echo "bootstrap: enabling RabbitMQ's management plugin"
  as_root rabbitmq-plugins enable --quiet rabbitmq_management >/dev/null
  for _ in $(seq 1 60); do port_open 15672 && break; sleep 1; done
  port_open 15672 || { echo "bootstrap: RabbitMQ's management API did not come up on 127.0.0.1:15672" >&2; exit 1; }
fi

stamp=$( (cat pyproject.toml guest/pyproject.toml; echo /usr/bin/python3) | sha256sum | cut -c1-16)
if [ ! -x .venv/bin/python ] || [ "$(cat .venv/.bootstrap-stamp 2>/dev/null)" != "$stamp" ]; then
  echo "bootstrap: preparing the Python environment in .venv"
  if [ -x .venv/bin/python ] && [ "$(readlink -f .venv/bin/python)" != "$(readlink -f /usr/bin/python3)" ]; then
    rm -rf .venv  # made from another Python: instances' accounts may not reach it
  fi
  [ -x .venv/bin/python ] || /usr/bin/python3 -m venv .venv
  # uv installs what pip would, in a fraction of its time (it fetches and unpacks in
  # parallel); pip itself where uv cannot be had. Both compile the modules to bytecode
  # here: the services and instances run under accounts of their own that cannot write
  # into .venv, so a module left uncompiled is compiled again by every process that
  # imports it (every ansible-playbook run, every guest agent).
  if ! { .venv/bin/pip install uv \
         && .venv/bin/uv pip install --compile-bytecode --python .venv/bin/python -e "$ROOT[test]"; } \
      > .venv/pip.log 2>&1 \
    && ! { .venv/bin/pip install --upgrade pip && .venv/bin/pip install -e "$ROOT[test]"; } \
      >> .venv/pip.log 2>&1; then
    tail -n 40 .venv/pip.log >&2
    echo "bootstrap: pip failed; the whole log is in .venv/pip.log" >&2
    exit 1
  fi
  echo "$stamp" > .venv/.bootstrap-stamp
fi
# The project's own modules, for the same reason, and an environment made before it
# compiled (only what is not compiled yet is compiled: a second run takes a second).
.venv/bin/python -m compileall -q .venv/lib trove_svc guest inventory_plugins > /dev/null
