"""Who is calling: passwords, API tokens, the session cookie with its CSRF token, and access rules."""
