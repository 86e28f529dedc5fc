"""Authentication, in one place: keys and roles (keys.py), console sessions and CSRF
(sessions.py), the failed-authentication limiter (limiter.py), and the decision for one
request (authenticate.py), which the auth middleware (api/middlewares.py) calls."""
