"""End-to-end smoke test of the core flow on each backend."""


def test_alert_flow(client, auth, emergency_category):
    headers = auth("alerts") | {"Idempotency-Key": "smoke-1"}
    body = {"category": "emergency", "message": "Water main break on 5th Ave", "severity": "critical"}
    first = client.post("/v1/alerts", headers=headers, json=body)
    assert first.status_code == 202, first.text  # critical: it waits for a second person (the one gate)
    assert first.json()["channels"] == ["sms", "voice", "email", "social", "banner"]
    again = client.post("/v1/alerts", headers=headers, json=body)
    assert again.status_code == 202
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    other = client.post("/v1/alerts", headers=headers, json=body | {"message": "different"})
    assert other.status_code == 422
    assert other.json()["error"] == "idempotency_key_reused"
