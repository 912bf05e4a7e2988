#!/usr/bin/env bash
# Install the test dependencies and run the whole test suite.
#
# The storage tests start their own throwaway PostgreSQL cluster, so the
# PostgreSQL server programs must be installed; as root this script installs
# them from the distribution when they are missing. Extra arguments go to
# pytest (e.g. tools/run-tests.sh tests/core -x).
set -euo pipefail
cd "$(dirname "$0")/.."

have_postgres() {
    command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1
}

if [ -z "${FREEZER_TEST_POSTGRESQL_URL:-}" ] && ! have_postgres; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "Installing the PostgreSQL server for the storage tests..."
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    else
        echo "The tests need the PostgreSQL server programs (initdb, pg_ctl):" >&2
        echo "  sudo apt-get install postgresql   (or set FREEZER_TEST_POSTGRESQL_URL)" >&2
        exit 1
    fi
fi

python -m pip install -q -e '.[test]'
exec python -m pytest "$@"
