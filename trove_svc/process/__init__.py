"""How a control-plane process starts and runs: settings, start-up, the parts it is
built from, metrics, the workers' heartbeats and the health check."""
