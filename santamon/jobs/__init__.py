"""Background maintenance: stale agents, retention and forwarding, run by APScheduler."""
