#!/usr/bin/env bash
# The whole test suite on a fresh Linux machine with Python 3.11+: the README's second command and
# what .ci/run calls. First what the suite needs from the system (Debian packages: installed when
# missing and we are root, else one line naming the apt-get command, and a stop), then the
# virtualenv .venv with the project and its `test` extra, then every test: one pytest run on
# TEST_SH_WORKERS pytest-xdist workers at once (default 4: many slow tests wait on daemons,
# sleeps and timeouts rather than compute, so more workers than cores pays). Tests marked `serial`
# (tests/parallel.py) run alone within that same run, no other test beside them. Arguments to this
# script go to pytest after those options, so they can override them (PYTEST_ADDOPTS goes to
# pytest too, but before them: it cannot change -n; TEST_SH_WORKERS can):
#   bash scripts/test.sh tests/unit        a part of the suite, in parallel
#   bash scripts/test.sh -n 0 -x -k name   in one process (collection order, pdb works), stopping
#                                          at the first failure
#
#   chromium, fonts-noto-cjk    the browser tests (real Chromium; Chinese in screenshots and PDFs)
#   libreoffice-calc-nogui      soffice opens the statistics workbooks and converts imports
#   poppler-utils               pdftotext / pdftoppm read the printed pages
#   python3-venv, python3-dev, gcc   the virtualenv; durable-rules builds from source (Python < 3.13)
#
# PostgreSQL: the tests use TEST_DATABASE_URL, else a server at 127.0.0.1:5432, else an embedded
# one (pgserver, from PyPI), so none is needed here.
# TEST_SH_PRETEND_MISSING="pkg ..." counts those packages as missing (to test this script's
# messages without uninstalling anything); TEST_SH_CHECK_ONLY=1 stops after the checks.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "scripts/test.sh: $*" >&2; }

python=$(command -v python3 || true)
python_ok=
if [[ -n "$python" ]] && "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  python_ok=1
fi

installed() {  # a Debian package, by dpkg when there is one, else by the command it provides
  local pkg=$1 probe=$2
  [[ " ${TEST_SH_PRETEND_MISSING:-} " == *" $pkg "* ]] && return 1
  if command -v dpkg-query >/dev/null 2>&1 &&
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    return 0
  fi
  eval "$probe" >/dev/null 2>&1
}

need=()
installed chromium "command -v chromium" || need+=(chromium)
installed fonts-noto-cjk "fc-list | grep -qi 'Noto Sans CJK'" || need+=(fonts-noto-cjk)
installed libreoffice-calc-nogui "command -v soffice" || need+=(libreoffice-calc-nogui)
installed poppler-utils "command -v pdftotext && command -v pdftoppm" || need+=(poppler-utils)
if [[ -n "$python_ok" ]]; then
  installed python3-venv "'$python' -c 'import ensurepip'" || need+=(python3-venv)
  if "$python" -c 'import sys; sys.exit(sys.version_info >= (3, 13))'; then  # durable-rules builds
    installed gcc "command -v cc" || need+=(gcc)
    headers=$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
    installed python3-dev "test -f '$headers/Python.h'" || need+=(python3-dev)
  fi
fi

if ((${#need[@]})); then
  install="apt-get update && apt-get install -y ${need[*]}"
  if [[ $(id -u) -ne 0 || -n "${TEST_SH_CHECK_ONLY:-}" ]]; then
    say "missing system packages; as root run: $install"
    exit 1
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    say "missing system packages (${need[*]}) and no apt-get: install them with this system's package manager"
    exit 1
  fi
  say "installing ${need[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}"
fi
if [[ -z "$python_ok" ]]; then
  say "needs Python 3.11 or later as python3 (found: ${python:-none}); on Debian 12: apt-get install -y python3 python3-venv"
  exit 1
fi
if [[ -n "${TEST_SH_CHECK_ONLY:-}" ]]; then
  say "system packages present"
  exit 0
fi

"$python" -m venv .venv
.venv/bin/pip install -q -e '.[test]'
exec .venv/bin/pytest -n "${TEST_SH_WORKERS:-4}" --dist load --maxschedchunk 1 "$@"
