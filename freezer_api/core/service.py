"""The composition of the resource managers over one storage driver."""

import time

from freezer_api.core import audit
from freezer_api.core import base
from freezer_api.core.actions import ActionManager
from freezer_api.core.backups import BackupManager
from freezer_api.core.clients import ClientManager
from freezer_api.core.jobs import JobManager
from freezer_api.core.sessions import SessionManager


class Services:
    """Every manager, sharing one driver, clock and id factory."""

    def __init__(self, storage, clock=time.time, new_id=base.new_hex_id,
                 trusts=None, default_timezone='UTC'):
        """``trusts`` (freezer_api.identity.trusts) enables central
        schedulers; without it they are refused. ``default_timezone`` is the
        IANA zone of job schedules that name none."""
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
        self.audit = audit.AuditReader(storage)
