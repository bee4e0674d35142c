"""The code version each accounting result records: the release, plus the git commit when there is one."""

import functools
import os
import subprocess
from pathlib import Path

RELEASE = "0.1.0"


@functools.cache
def code_version() -> str:
    if os.environ.get("TANHUI_CODE_VERSION"):
        return os.environ["TANHUI_CODE_VERSION"]
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                                text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return RELEASE
    return f"{RELEASE}+g{commit}{'.dirty' if dirty else ''}"
