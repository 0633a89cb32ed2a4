"""People: user accounts with roles, role grants, password and OpenID Connect sign-in (the console session itself is
broadcaster.sessions)."""
