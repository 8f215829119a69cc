"""Drift: the live schema compared with the schema an environment's own history says it has.

`settings` (the `[drift]` table of sqlstage.toml and what it filters out), `replay` (the
expected schema, made on a scratch database from the SQL the history rows recorded),
`check` (one environment: live against expected, the verdict), `compare` (two live
environments), `fixes` (the one obvious statement, suggested, never run).
"""
