#!/bin/bash
#
# DevStack plugin of freezer-api. In local.conf:
#
#     enable_plugin freezer-api <GITURL> [GITREF]
#
# DevStack sources this file with the phase as arguments ("stack install",
# "stack post-config", "stack extra", "unstack", "clean"); settings come
# from ./settings. See README.rst beside this file.

# shellcheck source=devstack/lib/freezer-api
source "$(dirname "${BASH_SOURCE[0]}")/lib/freezer-api"

if is_service_enabled freezer-api; then
    freezer_api_check_settings

    if [[ "$1" == "stack" && "$2" == "install" ]]; then
        echo_summary "Installing freezer-api"
        install_freezer_api

    elif [[ "$1" == "stack" && "$2" == "post-config" ]]; then
        echo_summary "Configuring freezer-api"
        configure_freezer_api
        create_freezer_api_accounts

    elif [[ "$1" == "stack" && "$2" == "extra" ]]; then
        echo_summary "Initializing and starting freezer-api"
        init_freezer_api
        start_freezer_api
    fi

    if [[ "$1" == "unstack" ]]; then
        stop_freezer_api
    fi

    if [[ "$1" == "clean" ]]; then
        cleanup_freezer_api
    fi
fi
