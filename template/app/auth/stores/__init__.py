"""Session stores (see `app.auth.sessions.SessionStore`)."""
