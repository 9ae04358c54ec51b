"""Monthly maintenance of the Brain store: retention of old rows into the archive tables, and of
settled alerts in the outbox; old chart files deleted."""

from brain_assets.defs.maintenance.jobs import maintenance_job, maintenance_schedule

__all__ = ["maintenance_job", "maintenance_schedule"]
