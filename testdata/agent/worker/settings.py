"""Settings from settings.yaml, overridden by the environment."""

import os
from pathlib import Path

import yaml

DEFAULTS = {"port": 8080, "upstream_url": "https://pypi.org/simple/", "poll_interval": 30}


def load_settings(path=None, environ=None):
    environ = os.environ if environ is None else environ
    path = Path(path or Path(__file__).resolve().parent.parent / "settings.yaml")
    settings = dict(DEFAULTS)
    if path.exists():
        with path.open(encoding="utf-8") as f:
            settings.update(yaml.safe_load(f) or {})
    for key, default in DEFAULTS.items():
        value = environ.get(key.upper())
        if value is not None:
            settings[key] = type(default)(value)
    return settings
