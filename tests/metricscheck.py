"""Reading `/metrics` in tests: every sample by name and labels."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import OPS_TOKEN


def scrape(client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of `/metrics`, scraped as Prometheus does: with an ops token as a bearer token."""
    response = client.get("/metrics", headers={"Authorization": f"Bearer {OPS_TOKEN}"})
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples
