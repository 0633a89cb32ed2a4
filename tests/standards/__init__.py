"""Standards' own schemas, vendored for the tests (each with its licence notice beside it)."""
