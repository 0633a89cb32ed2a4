"""Publishing and the approval gate: what an update would send (preview, content ETag), who may make it go out
(the two-person rule), and publishing itself (state change, fan-out, public pages refreshed)."""
