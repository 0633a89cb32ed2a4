"""The audit log API: `GET /v1/audit` (admin), filterable, newest first."""
