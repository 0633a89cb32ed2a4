"""`POST /v1/alerts`: the one-call path for ops scripts."""
