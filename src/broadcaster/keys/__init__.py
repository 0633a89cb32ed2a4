"""API key management (creation is CLI-only: keys are shown once, on the operator's terminal)."""
