"""`/dashboard` as served: the page holds no data, and its policy runs its own script alone."""

from __future__ import annotations

import re

SCRIPT_TAG = re.compile(r"<script\b([^>]*)>")
NONCE_SOURCE = re.compile(r"'nonce-([A-Za-z0-9_-]+)'")


def _script_sources(policy: str) -> list[str]:
    return next(part.split()[1:] for part in policy.split(";") if part.split()[:1] == ["script-src"])


def test_dashboard_policy_runs_no_script_but_the_pages_own(client):
    # The page keeps an ops token in the tab: inline markup slipped into it must not run.
    response = client.get("/dashboard")

    sources = _script_sources(response.headers["Content-Security-Policy"])
    assert "'unsafe-inline'" not in sources and "'self'" not in sources
    [nonce] = NONCE_SOURCE.findall(" ".join(sources))
    tags = SCRIPT_TAG.findall(response.get_data(as_text=True))
    assert tags and all(f'nonce="{nonce}"' in attributes for attributes in tags)


def test_dashboard_script_nonce_is_new_on_every_answer(client):
    policies = [client.get("/dashboard").headers["Content-Security-Policy"] for _ in range(2)]

    first, second = (NONCE_SOURCE.search(policy).group(1) for policy in policies)
    assert first != second and len(first) >= 22


def test_dashboard_is_framed_by_no_one_and_kept_by_no_cache(client):
    response = client.get("/dashboard")

    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["Cache-Control"] == "no-store"
