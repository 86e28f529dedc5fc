"""Request handlers by resource: parse and validate, call the store, shape the answer. Who
may call each one is declared in api/routes.py."""
