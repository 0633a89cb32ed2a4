"""People: user accounts with roles, console sessions (cookie + CSRF), password and OpenID Connect sign-in."""
