#!/usr/bin/env bash
# Install the test dependencies and run the whole test suite.
#
# The storage tests start their own throwaway PostgreSQL cluster, MariaDB
# server and Elasticsearch node (and the notification tests a RabbitMQ
# node: rabbitmq-server), so the PostgreSQL and MariaDB server
# programs, Maven (which fetches Elasticsearch from Maven Central into
# ~/.cache/freezer-api) and a JDK 17+ must be installed; as root this script
# installs them from the distribution when they are missing. Extra arguments
# go to pytest (e.g. tools/run-tests.sh tests/core -x).
#
# tools/run-tests.sh --fast is the inner loop instead: the core, the storage
# contract and the HTTP suite on SQLite, on every core, with no server and
# nothing installed (tests/fixtures/tiers.py leaves out what needs one).
#
# The deployment tests (tests/deploy) run a private Apache httpd with
# mod_wsgi, which they build from PyPI with apxs (apache2-dev) for a Python
# whose headers are installed (python3-dev), and uwsgi over HTTPS, which pip
# builds with SSL only when OpenSSL's headers are there (libssl-dev).
#
# The dashboard tests (tests/dashboard) drive Debian's chromium with its
# chromium-driver; nothing is downloaded at test time.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = --fast ]; then
    shift
    export FREEZER_TEST_API_BACKENDS=sqlite
    exec python -m pytest --fast -n auto tests/core tests/storage tests/api "$@"
fi

have_postgres() {
    command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1
}

have_mariadb() {
    # the server (in sbin, not on every PATH) and the data directory setup
    local PATH="$PATH:/usr/sbin:/usr/local/sbin:/usr/libexec"
    { command -v mariadbd || command -v mysqld; } >/dev/null 2>&1 &&
        { command -v mariadb-install-db || command -v mysql_install_db; } >/dev/null 2>&1
}

have_apache() {
    # the server, and apxs to build mod_wsgi
    local PATH="$PATH:/usr/sbin:/usr/local/sbin"
    { command -v apache2 || command -v httpd; } >/dev/null 2>&1 &&
        command -v apxs >/dev/null 2>&1
}

have_python_headers() {
    # Python.h of the distribution's python3, which mod_wsgi is built for when
    # Apache's unprivileged user cannot run the test interpreter
    [ ! -x /usr/bin/python3 ] || /usr/bin/python3 -c 'import os, sys, sysconfig
sys.exit(not os.path.isfile(os.path.join(sysconfig.get_paths()["include"], "Python.h")))'
}

servers=()
if [ -z "${FREEZER_TEST_POSTGRESQL_URL:-}" ] && ! have_postgres; then
    servers+=(postgresql)
fi
if [ -z "${FREEZER_TEST_MARIADB_URL:-}" ] && ! have_mariadb; then
    servers+=(mariadb-server)
fi
if ! have_apache; then
    servers+=(apache2 apache2-dev)
fi
if ! have_python_headers; then
    servers+=(python3-dev)
fi
if [ ! -f /usr/include/openssl/ssl.h ]; then
    servers+=(libssl-dev)
fi
if [ ! -x /usr/lib/rabbitmq/bin/rabbitmq-server ] && ! command -v rabbitmq-server >/dev/null 2>&1 \
        && [ ! -x /usr/sbin/rabbitmq-server ]; then
    # the message bus of the notification tests (tests/fixtures/rabbitmq.py)
    servers+=(rabbitmq-server)
fi
if ! command -v wrk >/dev/null 2>&1; then
    # the load generator of bench/ (its smoke test runs in the suite)
    servers+=(wrk)
fi
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
    # the browser the dashboard tests (tests/dashboard) drive
    servers+=(chromium chromium-driver)
fi
if [ "${#servers[@]}" -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        for server in "${servers[@]}"; do
            case $server in
                postgresql) echo "Installing the PostgreSQL server for the storage tests..." ;;
                mariadb-server) echo "Installing the MariaDB server for the storage tests..." ;;
                apache2) echo "Installing Apache httpd for the deployment tests..." ;;
                *-dev) echo "Installing $server to build mod_wsgi and uwsgi..." ;;
                chromium) echo "Installing Chromium for the dashboard tests..." ;;
            esac
        done
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${servers[@]}" >/dev/null
    else
        for server in "${servers[@]}"; do
            case $server in
                postgresql)
                    echo "The tests need the PostgreSQL server programs (initdb, pg_ctl):" >&2
                    echo "  sudo apt-get install postgresql   (or set FREEZER_TEST_POSTGRESQL_URL)" >&2
                    ;;
                mariadb-server)
                    echo "The tests need the MariaDB server programs (mariadbd, mariadb-install-db):" >&2
                    echo "  sudo apt-get install mariadb-server   (or set FREEZER_TEST_MARIADB_URL)" >&2
                    ;;
                apache2)
                    echo "The deployment tests need Apache httpd and apxs:" >&2
                    echo "  sudo apt-get install apache2 apache2-dev" >&2
                    ;;
                python3-dev|libssl-dev)
                    echo "The deployment tests build mod_wsgi and uwsgi with $server:" >&2
                    echo "  sudo apt-get install $server" >&2
                    ;;
                wrk)
                    echo "The benchmark's smoke test needs wrk:" >&2
                    echo "  sudo apt-get install wrk" >&2
                    ;;
                chromium|chromium-driver)
                    echo "The dashboard tests drive $server:" >&2
                    echo "  sudo apt-get install chromium chromium-driver" >&2
                    ;;
            esac
        done
        exit 1
    fi
fi

have_jdk17() {
    # a JDK whose release file says Java 17 or newer
    # -q: without it grep exits 2 when one of the files is missing
    grep -qsE '^JAVA_VERSION="(1[7-9]|[2-9][0-9])' /usr/lib/jvm/*/release \
        "${ES_JAVA_HOME:-/nonexistent}/release" \
        "${JAVA_HOME:-/nonexistent}/release" >/dev/null 2>&1
}

if [ -z "${FREEZER_TEST_ELASTICSEARCH_URL:-}" ] && \
        { ! command -v mvn >/dev/null 2>&1 || ! have_jdk17; }; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "Installing Maven and a JDK for the Elasticsearch tests..."
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq maven default-jdk-headless >/dev/null
    else
        echo "The tests need Maven and a JDK 17+ to fetch and run Elasticsearch:" >&2
        echo "  sudo apt-get install maven default-jdk-headless   (or set FREEZER_TEST_ELASTICSEARCH_URL)" >&2
        exit 1
    fi
fi

python -m pip install -q -e '.[test]'
# A uWSGI wheel that pip built (and cached) before libssl-dev was there has
# no HTTPS: build it again.
uwsgi="$(dirname "$(python -c 'import sys; print(sys.executable)')")/uwsgi"
if ! "$uwsgi" --help 2>/dev/null | grep -e '--https ' >/dev/null; then
    echo "Rebuilding uWSGI with SSL support..."
    python -m pip install -q --no-cache-dir --force-reinstall --no-deps uWSGI
fi
if [ "$#" -eq 0 ]; then
    # the whole suite: with the coverage report and its floor (pyproject.toml),
    # on FREEZER_TEST_WORKERS pytest-xdist workers (0: in this process). Most
    # of the suite waits on servers and subprocesses, so two workers take 18
    # minutes where one took 25 on 2 cores. --dist loadscope keeps a module's
    # (or a class's) tests on one worker, in order, with its fixtures built
    # once; each worker starts the servers it needs.
    set -- --cov -n "${FREEZER_TEST_WORKERS:-2}" --dist loadscope
fi
exec python -m pytest "$@"
