"""Read Prometheus metrics the way Prometheus does: over HTTP, parsed from the text format."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a scrape: (name, labels) -> value."""
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample (exactly these labels), or None when it is not there."""
    return samples(text).get((name, frozenset(labels.items())))


def scrape(port: int) -> str:
    """The metrics a process serves on 127.0.0.1:``port``."""
    response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    response.raise_for_status()
    return response.text
