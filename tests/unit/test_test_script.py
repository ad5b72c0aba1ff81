"""Issue 18: the README's test command (scripts/test.sh) on a machine that lacks what the suite
needs. As a user who cannot install, it stops at once with one line naming the `apt-get install`
command (TEST_SH_PRETEND_MISSING stands for packages this machine has: nothing is uninstalled);
with everything present it goes on (TEST_SH_CHECK_ONLY stops it there, not to run the suite in
the suite). The checks themselves are dpkg-query's and command -v's."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.helpers import ROOT

SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"


def _copy() -> Path:
    """The script in a folder any user can read (pytest's tmp_path is private to its owner)."""
    folder = Path(tempfile.mkdtemp(prefix="test-sh-", dir="/tmp"))
    (folder / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "test.sh", folder / "scripts" / "test.sh")
    for p in (folder, folder / "scripts", folder / "scripts" / "test.sh"):
        p.chmod(0o755)
    return folder


def _run(env: dict[str, str], unprivileged: bool) -> subprocess.CompletedProcess[str]:
    """The script as `nobody` (when we are root; else as ourselves, not root either) with the
    system's PATH, or as ourselves with ours (the Python that runs the suite is 3.11+)."""
    folder = _copy()
    try:
        nobody = unprivileged and os.geteuid() == 0
        path = SYSTEM_PATH if unprivileged else os.environ["PATH"]
        out = subprocess.run(
            [*(["runuser", "-u", "nobody", "--"] if nobody else []), "env", f"PATH={path}",
             *(f"{k}={v}" for k, v in env.items()), "bash", str(folder / "scripts" / "test.sh")],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert not (folder / ".venv").exists(), "it went on to make the virtualenv"
        return out
    finally:
        shutil.rmtree(folder)


def test_an_unprivileged_user_gets_one_line_naming_the_apt_get_command():
    out = _run({"TEST_SH_PRETEND_MISSING": "chromium poppler-utils"}, unprivileged=True)
    assert out.returncode == 1 and out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert lines == [
        "scripts/test.sh: missing system packages; as root run: "
        "apt-get update && apt-get install -y chromium poppler-utils"
    ], out.stderr


def test_with_everything_present_it_goes_on():
    out = _run({"TEST_SH_CHECK_ONLY": "1"}, unprivileged=False)
    assert out.returncode == 0, out.stderr
    assert out.stderr.strip() == "scripts/test.sh: system packages present"
