"""Severity colours and screen-reader urgency shared by the banner, the public pages and the console."""

from __future__ import annotations

#: severity -> background, text colour. Every pair passes WCAG AA (>= 4.5:1), asserted by a test.
PALETTE: dict[str, dict[str, str]] = {
    "critical": {"bg": "#9b1c1c", "fg": "#ffffff"},
    "major": {"bg": "#b45309", "fg": "#ffffff"},
    "minor": {"bg": "#fef3c7", "fg": "#1f2937"},
    "info": {"bg": "#e0f2fe", "fg": "#0c4a6e"},
}
#: critical and major interrupt a screen reader (role=alert, aria-live=assertive); the rest wait (polite)
ASSERTIVE = frozenset({"critical", "major"})
