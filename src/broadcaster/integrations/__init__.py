"""Inbound alerts from Alertmanager, Grafana and generic JSON webhooks, mapped by the routing map's alert rules."""
