"""Names a user writes that become paths: the rules for them and the directory name they map to.

`[experiment] name` names the run directory and `[[runs]] name` a folder inside it, so a name may
not leave its place (no separator, no `..`), hide characters (no NUL or control character) or
exceed what a file system takes. Names composed by a sweep (`optimizer=adam,lr=0.01`) are not
held to these rules: they come from values, and `slug` turns them into a safe folder name.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

#: The longest name nnrun accepts; file systems allow 255 bytes per path component.
MAX_LENGTH = 100
#: Unicode categories a name may not hold: control (NUL, newline, ESC), format (a right-to-left
#: override that makes a name read as another), line and paragraph separators, surrogates.
_INVISIBLE = {"Cc", "Cf", "Zl", "Zp", "Cs"}


def name_problem(name: str) -> str | None:
    """Why `name` cannot name a run or an experiment, or None when it can."""
    if name in ("", "."):
        return "a name may not be empty or '.'"
    if "/" in name or "\\" in name:
        return "a name may not contain a path separator ('/' or '\\')"
    if ".." in name:
        return "a name may not contain '..'"
    if any(unicodedata.category(char) in _INVISIBLE for char in name):
        return "a name may not contain NUL or other control characters"
    if len(name) > MAX_LENGTH:
        return f"a name is at most {MAX_LENGTH} characters, this one has {len(name)}"
    return None


def slug(name: str) -> str:
    """A run name made safe as a directory name. A name that had to change gets a short hash of
    itself, so two runs ("lr 0.1" and "lr_0.1") never share, and overwrite, one checkpoint folder."""
    safe = re.sub(r"[^A-Za-z0-9._=,+-]+", "_", name).strip("._") or "run"
    return safe if safe == name else f"{safe}-{hashlib.sha1(name.encode()).hexdigest()[:8]}"
