"""Scheduled maintenance windows: planned notices sent by the worker, services set to maintenance and back."""
