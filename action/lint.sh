#!/usr/bin/env bash
# Lint the migrations added or changed since the pull request's base, as ::error / ::warning
# annotations on their lines. Exit 1 on an error-severity finding, 2 on a bad base revision.
set -euo pipefail
: "${SQLSTAGE_BASE:?no base revision: run on pull_request or set the base input}"
sqlstage -C "${SQLSTAGE_DIR:-.}" lint --since "$SQLSTAGE_BASE" --format github
