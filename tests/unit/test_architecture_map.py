"""ARCHITECTURE.md is the newcomer's map of the code: it names only modules that exist, and every one that does."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAP = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
ENTRY = re.compile(r"^((?:app|workers|deploy)/[\w/.]*)", re.MULTILINE)
MODULE_NAME = re.compile(r"\b([a-z_][a-z_.]*\.py)\b")


def _entries() -> list[tuple[Path, str]]:
    """Each entry's path with the text of its lines (continuation lines start with spaces)."""
    entries: list[tuple[Path, str]] = []
    for line in MAP.splitlines():
        match = ENTRY.match(line)
        if match:
            entries.append((ROOT / match.group(1), line))
        elif entries and line.startswith(" "):
            path, text = entries[-1]
            entries[-1] = (path, text + "\n" + line)
    return entries


def _named_files() -> set[Path]:
    named: set[Path] = set()
    for path, text in _entries():
        folder = path if path.is_dir() else path.parent
        named.add(path)
        for name in MODULE_NAME.findall(text):
            named.add(folder / name)
    return named


def test_every_path_the_map_names_exists():
    missing = sorted(str(path.relative_to(ROOT)) for path in _named_files() if not path.exists())
    assert missing == []


def test_every_module_of_the_relay_is_on_the_map():
    named = _named_files()
    modules = [
        path
        for package in ("app", "workers")
        for path in sorted((ROOT / package).rglob("*.py"))
        if path.name != "__init__.py"
    ]
    unnamed = [str(path.relative_to(ROOT)) for path in modules if path not in named and path.parent not in named]
    assert unnamed == []
