"""Subscribers: people and their channel addresses, what they follow (categories, services, tags, areas), the
public subscribe form with its abuse limits and human check, confirmation and one-click unsubscribe links, and
the SMS keywords (STOP, START, HELP)."""
