"""Everything a user or plugin author touches is exported from `nnrun`, and `import nnrun` (what
a plugin module does first) does not pull in torch."""

from __future__ import annotations

import subprocess
import sys

import pytest

import nnrun


@pytest.mark.parametrize("name", nnrun.__all__)
def test_every_public_name_resolves(name):
    assert getattr(nnrun, name) is not None


def test_importing_nnrun_and_its_marker_does_not_import_torch():
    code = "import sys, nnrun; nnrun.hookimpl; print('torch' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_an_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'Trainer'"):
        nnrun.Trainer  # noqa: B018
