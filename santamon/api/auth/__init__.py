"""Authentication, in one place: access, grants and the key ring (keys.py), the ring kept in
step with the stored keys and their use recorded (sync.py), whom an agent key may speak for
(agents.py), console sessions and CSRF (sessions.py), the failed-authentication limiter
(limiter.py), and the decision for one request (authenticate.py), which the auth middleware
(api/middlewares.py) calls."""
