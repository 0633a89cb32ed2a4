"""Alert rules: what an inbound alert is (the senders' payloads, signals) and how the routing map's `alert_rules`
and `webhook_mappings` turn it into an incident's text, rendered under a hard budget. Part of the routing map
(routing imports it); receiving alerts and acting on them is broadcaster.integrations."""
