"""Incidents and their timeline of updates."""
