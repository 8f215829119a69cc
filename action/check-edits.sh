#!/usr/bin/env bash
# Refuse (exit 2) a migration that status.json, as committed at the base, records as applied
# to some environment and that this branch edited or deleted; an ::error annotation on each.
# Judged by the base's status.json, so the branch cannot rewrite the record it is judged by.
set -euo pipefail
: "${SQLSTAGE_BASE:?no base revision: run on pull_request or set the base input}"
sqlstage -C "${SQLSTAGE_DIR:-.}" check-edits --base "$SQLSTAGE_BASE" --format github
