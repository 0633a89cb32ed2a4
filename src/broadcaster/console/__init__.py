"""The web console for comms staff and admins (pages under /console; see docs/console.md)."""
