"""Background maintenance run by APScheduler (scheduler.py): stale agents (stale.py),
retention (retention.py) and forwarding (forwarding.py); board.py records every run. Jobs get
the store, the settings, an HTTP session and a clock, never the web application."""
