"""Redis: its spec, its guest driver (redis-py) and its backup engine (RDB snapshots)."""
