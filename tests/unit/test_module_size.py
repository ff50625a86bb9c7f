"""The style guide's small pieces: no module of the relay grows past 400 lines (split by responsibility first)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_MODULE_LINES = 400


def test_every_module_of_the_relay_stays_within_400_lines():
    too_long = {
        str(path.relative_to(ROOT)): lines
        for package in ("app", "workers")
        for path in sorted((ROOT / package).rglob("*.py"))
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert too_long == {}
