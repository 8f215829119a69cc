#!/usr/bin/env bash
# The plan for each environment, offline from status.json, as Markdown: in the job summary,
# in the step's `plan` output, and (on a pull request, SQLSTAGE_COMMENT=true) as a comment
# that later pushes update instead of adding another. Posting uses the GitHub CLI.
set -euo pipefail
plan="${RUNNER_TEMP:-$(mktemp -d)}/sqlstage-plan.md"
sqlstage -C "${SQLSTAGE_DIR:-.}" plan --format markdown >"$plan"
if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then cat "$plan" >>"$GITHUB_STEP_SUMMARY"; fi
if [ -n "${GITHUB_OUTPUT:-}" ]; then echo "plan=$plan" >>"$GITHUB_OUTPUT"; fi
if [ "${SQLSTAGE_COMMENT:-true}" != true ] || [ -z "${SQLSTAGE_PR:-}" ]; then exit 0; fi
: "${GITHUB_REPOSITORY:?GITHUB_REPOSITORY is not set}"
marker="$(head -n 1 "$plan")"
comments="repos/$GITHUB_REPOSITORY/issues/$SQLSTAGE_PR/comments"
existing="$(gh api "$comments" --paginate \
  --jq ".[] | select(.body | startswith(\"$marker\")) | .id" | head -n 1)"
if [ -n "$existing" ]; then
  gh api --method PATCH "repos/$GITHUB_REPOSITORY/issues/comments/$existing" \
    -F body=@"$plan" >/dev/null
  echo "updated the plan comment on pull request #$SQLSTAGE_PR"
else
  gh api --method POST "$comments" -F body=@"$plan" >/dev/null
  echo "commented the plan on pull request #$SQLSTAGE_PR"
fi
