"""The composition of the resource managers over one storage driver."""

import time

from freezer_api.core import audit
from freezer_api.core import base
from freezer_api.core.actions import ActionManager
from freezer_api.core.backups import BackupManager
from freezer_api.core.clients import ClientManager
from freezer_api.core.coverage import CoverageManager
from freezer_api.core.coverage import HealthSweeper
from freezer_api.core.jobs import JobManager
from freezer_api.core.presence import PresenceManager
from freezer_api.core.runs import HealthSettings
from freezer_api.core.runs import RunLedger
from freezer_api.core.runs import RunManager
from freezer_api.core.sessions import SessionManager


class Services:
    """Every manager, sharing one driver, clock and id factory."""

    def __init__(self, storage, clock=time.time, new_id=base.new_hex_id,
                 trusts=None, default_timezone='UTC',
                 health=HealthSettings(), presence_flush_interval=30.0,
                 sweep_interval=0.0):
        """``trusts`` (freezer_api.identity.trusts) enables central
        schedulers; without it they are refused. ``default_timezone`` is the
        IANA zone of job schedules that name none. ``health`` and
        ``presence_flush_interval`` and ``sweep_interval`` (0: no
        background sweep): the [health] options (issue 15)."""
        self.storage = storage
        kwargs = {'clock': clock, 'new_id': new_id}
        self.backups = BackupManager(storage, **kwargs)
        self.clients = ClientManager(storage,
                                     central_enabled=trusts is not None,
                                     **kwargs)
        self.actions = ActionManager(storage, **kwargs)
        self.jobs = JobManager(storage, self.actions, self.clients,
                               trusts=trusts,
                               default_timezone=default_timezone, **kwargs)
        self.sessions = SessionManager(storage, **kwargs)
        # Backup health (issue 15): the ledger hooks into the managers
        # that apply scheduler reports; the readers settle lost and missed
        # runs.
        ledger = RunLedger(clock, health)
        self.presence = PresenceManager(
            storage, flush_interval=presence_flush_interval,
            offline_after=health.offline_after, **kwargs)
        self.runs = RunManager(storage, self.presence, health,
                               self.jobs.default_timezone, **kwargs)
        self.coverage = CoverageManager(storage, self.runs, self.presence,
                                        **kwargs)
        self.sweeper = HealthSweeper(self.coverage, sweep_interval, ledger)
        self.jobs.ledger = self.sessions.ledger = ledger
        self.backups.ledger = ledger
        self.jobs.presence = self.presence
        self.audit = audit.AuditReader(storage)
