"""README's dev-stack examples for a form, Meta's webhook and Google's, run as written against the app."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import shlex
import tomllib
from pathlib import Path

import pytest

from app import create_app
from app.config import Settings
from app.crypto import generate_key
from app.sources import check_configured_sources
from app.startup import EVERY_TIER_REQUIREMENTS, configuration_problems
from tests.support import FakeClock

REPO_ROOT = Path(__file__).parents[2]
README = (REPO_ROOT / "README.md").read_text()


def shell_blocks() -> list[str]:
    return re.findall(r"```sh\n(.*?)```", README, re.S)


def block_with(text: str) -> str:
    return next(block for block in shell_blocks() if text in block)


def example_environment() -> dict[str, str]:
    """The variables README exports before `leadrelay dev` to try the other intakes."""
    block = block_with("export LEADRELAY_SOURCES=")
    words = shlex.split(block.split("\n.venv/bin/leadrelay dev")[0])
    environ = dict(word.split("=", 1) for word in words if "=" in word)
    environ["LEADRELAY_SOURCES"] = str(REPO_ROOT / environ["LEADRELAY_SOURCES"])
    return environ


def curl_lines() -> str:
    return block_with("/v1/forms/").replace("\\\n", " ")


@pytest.fixture
def example_client(redis):
    environ = {
        **example_environment(),
        "CARECYCLE_API_KEY": "cc_sandbox",
        "LEADRELAY_ENCRYPTION_KEY": generate_key(),
        "LEADRELAY_SOURCE_KEYS": "dev=dev-source-key-0123456789",
        "LEADRELAY_OPS_TOKENS": "dev=dev-ops-token-0123456789",
    }
    settings = Settings.from_env(environ)
    return create_app(settings, redis=redis, clock=FakeClock()).test_client()


def test_readme_dev_sources_example_is_a_configuration_the_relay_takes():
    settings = Settings.from_env({**example_environment(), "LEADRELAY_ENCRYPTION_KEY": generate_key()})

    sources, problems = check_configured_sources(settings)

    assert problems == []
    assert {"medicare-landing", "facebook-aep", "google-aca"} <= {source.slug for source in sources}


def test_readme_dev_sources_example_gives_what_the_web_tier_and_the_workers_require():
    # `leadrelay dev` stops, naming what is missing, before it starts a worker that would stop at start.
    environ = {**example_environment(), "LEADRELAY_ENCRYPTION_KEY": generate_key(), "CARECYCLE_API_KEY": "cc_x"}

    _, _, problems = configuration_problems(environ, EVERY_TIER_REQUIREMENTS)

    assert problems == []


def test_readme_form_example_is_answered_202_json(example_client):
    line = next(line for line in curl_lines().splitlines() if "/v1/forms/" in line)
    words = shlex.split(line)
    headers = dict(words[i + 1].split(": ", 1) for i, word in enumerate(words) if word == "-H")

    answer = example_client.post(
        "/v1/forms/medicare-landing",
        data=words[words.index("-d") + 1],
        headers={**headers, "Content-Type": "application/x-www-form-urlencoded"},
    )

    assert answer.status_code == 202, answer.get_json()
    assert answer.get_json()["status"] == "queued"


def test_readme_meta_handshake_example_prints_its_challenge(example_client):
    url = re.search(r'"http://127\.0\.0\.1:8000(/v1/webhooks/facebook\?[^"]+)"', curl_lines()).group(1)

    answer = example_client.get(url)

    assert answer.status_code == 200
    assert answer.get_data(as_text=True) == "1158201444"


def test_readme_meta_notification_example_makes_a_lead_in_fetching(example_client):
    body = re.search(r"^BODY='(.*)'$", curl_lines(), re.M).group(1)
    secret = example_environment()["FACEBOOK_APP_SECRET"]
    assert f"-hmac {secret} " in curl_lines()
    signature = "sha256=" + hmac.new(secret.encode(), body.encode(), hashlib.sha256).hexdigest()

    answer = example_client.post(
        "/v1/webhooks/facebook",
        data=body,
        headers={"X-Hub-Signature-256": signature, "Content-Type": "application/json"},
    )

    assert answer.status_code == 200
    [lead] = answer.get_json()["leads"]
    assert (lead["leadgenId"], lead["status"], lead["repeated"]) == ("444444444444", "fetching", False)
    assert answer.get_json()["skipped"] == 0


def test_readme_google_example_is_taken_in_queued(example_client):
    line = next(line for line in curl_lines().splitlines() if "/v1/webhooks/google/" in line)
    body = shlex.split(line)[-1]
    assert json.loads(body)["google_key"] == example_environment()["GOOGLE_ACA_FORM_KEY"]

    answer = example_client.post(
        "/v1/webhooks/google/google-aca", data=body, headers={"Content-Type": "application/json"}
    )

    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["status"] == "queued"


def test_readme_says_why_each_dependency_is_there():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    runtime = [re.split(r"[<>=\[; ]", spec)[0].lower() for spec in project["dependencies"]]
    dependencies = README.split("## Dependencies", 1)[1].split("\n## ", 1)[0].lower()

    rows = {
        name.strip()
        for line in dependencies.splitlines()
        if line.startswith("| ")
        for name in line[2:].split(" |")[0].split(",")
    }
    assert not [name for name in runtime if name not in rows], "give each runtime dependency a row in README's table"
    tests = [re.split(r"[<>=\[; ]", spec)[0].lower() for spec in project["optional-dependencies"]["test"]]
    assert not [name for name in tests if name not in dependencies], "name each test dependency in README"
