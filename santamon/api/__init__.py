"""The HTTP layer: routes.py (the one route table), views/ (handlers by resource), auth/,
middlewares.py, models.py (what the API accepts and answers), openapi.py, state.py."""
