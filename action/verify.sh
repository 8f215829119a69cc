#!/usr/bin/env bash
# Apply, roll back and re-apply every migration on a scratch database made on the server of
# the environment named (a service database in CI); exit 1 when one does not round-trip.
set -euo pipefail
: "${SQLSTAGE_VERIFY_ENV:?name the environment whose server verify uses}"
sqlstage -C "${SQLSTAGE_DIR:-.}" verify --env "$SQLSTAGE_VERIFY_ENV"
