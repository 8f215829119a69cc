"""The library's values as `--json` fields (docs/json.md), one function per value type.

Looked up by the value's type name, so `status --json` imports no driver to render.
Field names are camelCase, as in status.json.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlstage.commands import BaselineResult, CheckReport, RepairResult, RunResult
    from sqlstage.drift.check import DriftReport
    from sqlstage.drift.compare import EnvironmentsDiff
    from sqlstage.errors import SqlstageError
    from sqlstage.history import AppliedMigration
    from sqlstage.project import VerifyReport
    from sqlstage.report import EnvironmentStatus, LiveReport, OfflinePlans, StatusReport
    from sqlstage.schema import Snapshot
    from sqlstage.status_file import Recorded


def fields(value: object) -> dict[str, Any]:
    """The document's fields for a command's value (a dict is taken as it is)."""
    if isinstance(value, dict):
        return value
    render = RENDERERS.get(type(value).__name__)
    if render is None:
        raise TypeError(f"no JSON document for {type(value).__name__}")
    return render(value)


def _path(path: Path | None) -> str | None:
    return None if path is None else str(path)


# -- offline ------------------------------------------------------------------------------
def _recorded(row: Recorded) -> dict[str, Any]:
    return {
        "migration": row.migration,
        "appliedAt": row.applied_at,
        "checksum": row.checksum,
        "outOfOrder": row.out_of_order,
        "origin": row.origin.value,
    }


def environment_fields(status: EnvironmentStatus) -> dict[str, Any]:
    env = status.environment
    return {
        "name": env.name,
        "protected": env.protected,
        "lastApplied": status.last_applied,
        "appliedAt": status.applied_at,
        "applied": [_recorded(row) for row in status.applied],
        "pending": list(status.pending),
        "failed": list(status.failed),
        "edited": list(status.edited),
        "outOfOrder": list(status.out_of_order),
        "missingFiles": list(status.missing),
        "drift": status.drift.to_json() if status.drift is not None else None,
        "upToDate": status.up_to_date,
    }


def status_fields(report: StatusReport) -> dict[str, Any]:
    return {
        "lastUpdated": report.last_updated,
        "migrations": [m.name for m in report.migrations],
        "environments": {
            key: environment_fields(status) for key, status in report.by_environment.items()
        },
        "warnings": [*report.warnings, *report.edited],
        "upToDate": all(s.up_to_date for s in report.by_environment.values()),
    }


def plans_fields(plans: OfflinePlans) -> dict[str, Any]:
    return {
        "dialect": plans.dialect,
        "environments": {
            plan.status.environment.key: {
                "name": plan.status.environment.name,
                "protected": plan.status.environment.protected,
                "pending": [
                    {
                        "migration": m.name,
                        "file": str(m.path),
                        "outOfOrder": m.name in plan.status.out_of_order,
                        "noTransaction": m.no_transaction,
                        "findings": [
                            f.as_dict(str(f.path)) for f in plan.findings if f.path == m.path
                        ],
                    }
                    for m in plan.migrations
                ],
                "failed": list(plan.status.failed),
                "edited": list(plan.status.edited),
                "blockingFindings": sum(f.blocking for f in plan.findings),
                "upToDate": plan.status.up_to_date,
            }
            for plan in plans.plans
        },
    }


# -- connected ----------------------------------------------------------------------------
def history_row(row: AppliedMigration) -> dict[str, Any]:
    return {
        "migration": row.migration,
        "status": row.status.value,
        "checksum": row.checksum,
        "appliedAt": row.applied_at.isoformat(),
        "appliedBy": row.applied_by,
        "durationMs": row.duration_ms,
        "origin": row.origin.value,
        "outOfOrder": row.out_of_order,
        "statementsDone": row.statements_done,
        "note": row.note,
    }


def live_fields(report: LiveReport) -> dict[str, Any]:
    return {
        "environment": report.environment.key,
        "live": True,
        "applied": [history_row(row) for row in report.history if row.is_applied],
        "pending": list(report.pending),
        "failed": list(report.failed),
        "differences": [
            {
                "kind": d.kind,
                "name": d.name,
                "expected": d.expected,
                "live": d.live,
                "message": d.message,
            }
            for d in report.differences
        ],
        "edited": report.edited is not None,
        "written": report.written,
        "needsRebuild": list(report.unknown),
        "upToDate": report.up_to_date,
        "adoption": _adoption(report.adoption),
    }


def check_fields(report: CheckReport) -> dict[str, Any]:
    info, marker, last = report.info, report.marker, report.last_applied
    return {
        "server": {
            "product": info.product,
            "version": info.version,
            "database": info.database,
            "host": info.host,
            "user": info.user,
        },
        "marker": {
            "present": marker.present,
            "environment": marker.environment,
            "protected": marker.protected,
            "matches": report.refusal is None,
        },
        "appliedCount": report.applied_count,
        "lastApplied": history_row(last) if last else None,
        "adoption": _adoption(report.adoption),
    }


def _adoption(refusal: SqlstageError | None) -> dict[str, Any] | None:
    """What `apply` refuses until `sqlstage baseline ENV` (README, "Adopting an existing
    project"): `{"message", "fix"}`, or null."""
    return None if refusal is None else {"message": refusal.message, "fix": refusal.fix}


def run_fields(result: RunResult) -> dict[str, Any]:
    plan = result.plan
    return {
        "environment": plan.environment.key,
        "direction": plan.direction.value,
        "plan": [
            {
                "migration": step.name,
                "file": str(step.migration.path),
                "statements": len(step.statements),
                "inTransaction": step.in_transaction,
                "outOfOrder": step.out_of_order,
            }
            for step in plan.steps
        ],
        "renames": [{"from": r.old, "to": r.new.name} for r in plan.renames],
        "alreadyApplied": plan.already_applied.migration if plan.already_applied else None,
        "notApplied": plan.not_applied.name if plan.not_applied else None,
        "warnings": list(plan.warnings),
        "findings": [f.as_dict(str(f.path)) for f in plan.findings],  # type: ignore[attr-defined]
        "refusals": [str(refusal) for refusal in plan.refusals],
        "done": [m.name for m in result.migrations],
        "log": _path(result.log_path),
        "statusWritten": result.status_written,
        "schemaDump": _path(result.schema_dump),
        "backup": _path(result.backup),
    }


def repair_fields(result: RepairResult) -> dict[str, Any]:
    return {
        "done": result.done,
        "log": str(result.log_path),
        "statusWritten": result.status_written,
    }


def baseline_fields(result: BaselineResult) -> dict[str, Any]:
    return {"recorded": [m.name for m in result.migrations], "statusWritten": result.status_written}


def verify_fields(report: VerifyReport) -> dict[str, Any]:
    from sqlstage.cli.progress import verify_as_json

    return verify_as_json(report)


def snapshot_fields(snap: Snapshot) -> dict[str, Any]:
    return snap.to_dict()


def drift_fields(report: DriftReport) -> dict[str, Any]:
    return report.to_dict()


def diff_fields(result: EnvironmentsDiff) -> dict[str, Any]:
    return result.to_dict()


RENDERERS: dict[str, Callable[[Any], dict[str, Any]]] = {
    "StatusReport": status_fields,
    "EnvironmentStatus": environment_fields,
    "OfflinePlans": plans_fields,
    "LiveReport": live_fields,
    "CheckReport": check_fields,
    "RunResult": run_fields,
    "RepairResult": repair_fields,
    "BaselineResult": baseline_fields,
    "VerifyReport": verify_fields,
    "Snapshot": snapshot_fields,
    "DriftReport": drift_fields,
    "EnvironmentsDiff": diff_fields,
}
