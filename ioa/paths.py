"""Where ioa keeps what runs share: converted base models and the teacher response cache.

One user cache folder, reused by every run wherever its run directory is (the way Hugging Face keeps
`~/.cache/huggingface`): `$IOA_CACHE` when set, else `$XDG_CACHE_HOME/ioa`, else `~/.cache/ioa`.
"""
from __future__ import annotations

import os
from pathlib import Path


def user_cache_dir() -> Path:
    if os.environ.get("IOA_CACHE"):
        return Path(os.environ["IOA_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "ioa"
