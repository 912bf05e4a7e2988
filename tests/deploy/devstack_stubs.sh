# shellcheck shell=bash
#
# Stand-ins for the DevStack functions that devstack/plugin.sh calls, for
# tests/deploy/test_devstack.py. Each one appends its name and arguments,
# shell-quoted, as one line to $FREEZER_TEST_CALLS. iniset really edits the
# file; write_uwsgi_config writes what DevStack's does (the module form);
# sudo runs its command as the current user. Everything else only records.

: "${FREEZER_TEST_CALLS:?}" "${FREEZER_TEST_PYTHON:?}"
: "${FREEZER_TEST_BIN_DIR:?}" "${FREEZER_TEST_APACHE_SITES:?}"

function record {
    printf '%q ' "$@" >> "$FREEZER_TEST_CALLS"
    printf '\n' >> "$FREEZER_TEST_CALLS"
}

function die {
    local line=$1
    shift
    echo "die (line $line): $*" >&2
    exit 1
}

function echo_summary { record echo_summary "$@"; }

function enable_service {
    record enable_service "$@"
    ENABLED_SERVICES+=",$*"
}

function is_service_enabled {
    local service
    for service in "$@"; do
        [[ ,${ENABLED_SERVICES}, == *,"$service",* ]] && return 0
    done
    return 1
}

function sudo {
    record sudo "$@"
    "$@"
}

function iniset {
    record iniset "$@"
    if [[ $1 == -sudo ]]; then
        shift
    fi
    "$FREEZER_TEST_PYTHON" - "$@" <<'PY'
import configparser
import os
import sys

path, section, option, value = sys.argv[1:]
parser = configparser.ConfigParser(interpolation=None, delimiters=('=',))
parser.optionxform = str
if os.path.exists(path):
    parser.read(path)
if section != 'DEFAULT' and not parser.has_section(section):
    parser.add_section(section)
parser.set(section, option, value)
with open(path, 'w') as handle:
    parser.write(handle)
PY
}

function get_python_exec_prefix { echo "$FREEZER_TEST_BIN_DIR"; }

function setup_develop { record setup_develop "$@"; }
function pip_install { record pip_install "$@"; }
function install_apache_wsgi { record install_apache_wsgi "$@"; }

function configure_keystone_authtoken_middleware {
    record configure_keystone_authtoken_middleware "$@"
    local conf=$1 user=$2 section=${3:-keystone_authtoken}
    iniset "$conf" "$section" auth_type password
    iniset "$conf" "$section" www_authenticate_uri "$KEYSTONE_SERVICE_URI"
    iniset "$conf" "$section" auth_url "$KEYSTONE_SERVICE_URI"
    iniset "$conf" "$section" username "$user"
    iniset "$conf" "$section" password "$SERVICE_PASSWORD"
    iniset "$conf" "$section" user_domain_name "$SERVICE_DOMAIN_NAME"
    iniset "$conf" "$section" project_name "$SERVICE_PROJECT_NAME"
    iniset "$conf" "$section" project_domain_name "$SERVICE_DOMAIN_NAME"
}

function database_connection_url {
    record database_connection_url "$@"
    echo "sqlite:///$DATA_DIR/$1.sqlite"
}

function recreate_database {
    record recreate_database "$@"
    rm -f "$DATA_DIR/$1.sqlite"
}

function create_service_user { record create_service_user "$@"; }

function get_or_create_service {
    record get_or_create_service "$@"
    echo "service-id-of-$1"
}

function get_or_create_endpoint { record get_or_create_endpoint "$@"; }

function write_uwsgi_config {
    record write_uwsgi_config "$@"
    local conf=$1 wsgi=$2 http=$4
    rm -f "$conf"
    iniset "$conf" uwsgi module "$wsgi"
    iniset "$conf" uwsgi processes "$API_WORKERS"
    iniset "$conf" uwsgi master true
    iniset "$conf" uwsgi die-on-term true
    iniset "$conf" uwsgi hook-master-start "unix_signal:15 gracefully_kill_them_all"
    iniset "$conf" uwsgi exit-on-reload false
    iniset "$conf" uwsgi enable-threads true
    iniset "$conf" uwsgi thunder-lock true
    iniset "$conf" uwsgi buffer-size 65535
    iniset "$conf" uwsgi add-header "Connection: close"
    iniset "$conf" uwsgi lazy-apps true
    iniset "$conf" uwsgi http "$http"
}

function remove_uwsgi_config {
    record remove_uwsgi_config "$@"
    rm -f "$1"
}

function run_process { record run_process "$@"; }
function stop_process { record stop_process "$@"; }
function wait_for_service { record wait_for_service "$@"; }

function apache_site_config_for { echo "$FREEZER_TEST_APACHE_SITES/$1.conf"; }
function enable_apache_site { record enable_apache_site "$@"; }
function disable_apache_site { record disable_apache_site "$@"; }
function restart_apache_server { record restart_apache_server "$@"; }
