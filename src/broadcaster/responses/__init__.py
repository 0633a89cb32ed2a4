"""Two-way updates: a question ("Are you safe?") on an update, answers matched from every channel, live
tallies, the response team's list, CSV export and closing. Escalation rules run elsewhere on these tables."""
