"""Where caches live: `KTBENCH_CACHE`, else the user's cache folder."""
import os
from pathlib import Path


def cache_dir(override=None) -> Path:
    if override:
        return Path(override)
    if os.environ.get("KTBENCH_CACHE"):
        return Path(os.environ["KTBENCH_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "ktbench"
