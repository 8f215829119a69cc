"""`sqlstage agents`: the rules block for AGENTS.md / CLAUDE.md."""

from __future__ import annotations

from pathlib import Path

BEGIN = "<!-- sqlstage:agent-rules -->"
END = "<!-- /sqlstage:agent-rules -->"

RULES = f"""{BEGIN}
## Database migrations (sqlstage)

- Never run SQL against a database directly (no `psql -f`, no ad-hoc `psql -c`): every schema
  or data change is a numbered file in the migrations folder, applied with `sqlstage apply`.
- Create migrations with `sqlstage new NAME`; write the rollback below `-- rollback`,
  commented out. Never edit a migration that has been applied anywhere: add a new one.
- Rehearse in dev first: `sqlstage apply dev`. Production only ever runs what dev has run.
- After applying, commit `database/migrations/status.json` together with the migration.
- Never ask for, read, store or print production credentials, and never apply to a protected
  environment: a human does that in a terminal (`sqlstage apply pro`). sqlstage refuses
  protected environments when there is no terminal, and `--yes` does not change that.
- Check what each environment lacks with `sqlstage status` (offline, no credentials needed).
{END}
"""


def write_rules(path: Path) -> bool:
    """Add the rules block to `path`, or replace the one there; returns whether it changed."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if BEGIN in text and END in text:
        start = text.index(BEGIN)
        end = text.index(END) + len(END)
        updated = text[:start] + RULES.rstrip("\n") + text[end:]
    else:
        separator = (
            "" if not text or text.endswith("\n\n") else ("\n" if text.endswith("\n") else "\n\n")
        )
        updated = text + separator + RULES
    if updated == text:
        return False
    path.write_text(updated, encoding="utf-8")
    return True
