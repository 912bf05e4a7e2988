"""Notifications on the message bus (oslo.messaging), configured as in
other OpenStack services: ``[oslo_messaging_notifications] driver``
(e.g. ``messagingv2``; none or ``noop``: nothing is sent), ``transport_url``
(else ``[DEFAULT] transport_url``), ``topics`` (``notifications``).

What is sent is ``freezer_api.core.notify``'s: one ``<kind>.<action>.end``
per document written (from its audit record, after the commit) and one
event per health occurrence (``health_event``).

Delivery
    A request never waits for the bus: one thread of each API process
    sends, and while the bus is down it retries (backoff up to 30 s) and
    the API keeps answering.

    Document events: the audit trail is the outbox, and the store keeps,
    per project, a send cursor: the audit ``seq`` up to which the
    project's events were sent (``StorageDriver.lease_cursor``). A
    process sends a project's events only while it holds the cursor's
    lease: it reads the records after the cursor (those it committed
    itself come from memory), sends them in ``seq`` order, and writes the
    cursor past what the broker confirmed: after each full batch
    (``BATCH``), at most every ``MOVE_EVERY`` seconds while it keeps
    sending, and when it gives the lease up, ``LINGER`` seconds after its
    last send. So of several API processes one sends a given range. The
    lease is renewed while the bus is down and ends ``LEASE`` seconds
    after its last renewal when its process dies. Every process, at its
    start and every ``RESUME_INTERVAL`` seconds, resumes each project
    whose cursor is behind its audit head and whose lease is free or
    ended: what a stopped or killed process left unsent (its queue, a
    project it had fallen behind on) is sent by the next process that
    runs. Guaranteed: every document event whose audit record the store
    still keeps (not purged) is sent, once the bus is back, as long as
    one API process runs, in ``seq`` order within a project; at least
    once, not exactly once: the events sent after the cursor was last
    written are sent again when their sender dies before it writes it
    (at most ``BATCH`` of them, or ``MOVE_EVERY`` seconds' worth) or
    loses its lease while the bus hangs. A duplicate carries the same
    ``event_id`` (``<project>:<seq>``), so a consumer drops what it has
    seen. A project whose records were all
    purged before they were sent has its cursor moved to its head after
    ``GAP_GRACE`` seconds, with a warning: those events are lost.

    A project with no send cursor yet whose newest record is older than
    ``SEED_AGE`` (a store written before there were send cursors) starts
    at its head: its events were taken as its writers' to send. One with
    recent records has its retained trail sent (again, for events an
    earlier release sent: same ``event_id``).

    Confirmation: oslo.messaging's RabbitMQ driver (kombu over py-amqp)
    opens its connections with publisher confirms (``confirm_publish``),
    so a publish returns only once the broker acknowledged the message,
    and fails when the broker refused it or the connection died first.
    The messaging notification drivers (and the ``Notifier``) log such a
    failure and drop the event; ``oslo_sender`` calls the transport's
    send under them, which raises, so that the event is sent again.
    Messages are persistent; they outlive a broker restart only in
    durable queues (``[oslo_messaging_rabbit] amqp_durable_queues =
    true``, or quorum queues): with the default, transient queues, what
    the broker held when it stopped is lost although it was confirmed. A
    message that no queue takes is confirmed and dropped: the driver
    declares the ``<topic>.<priority>`` queue before its first send on
    each connection, so this happens only if someone deletes the queue
    while the API runs.

    Health events: a health occurrence is claimed in the store
    (``claim_event``) before it is queued in memory, so of all the API
    processes that detect it, exactly one sends it; it is retried while
    the bus is down, but lost if that process stops before it was sent.
"""

import collections
import datetime
import logging
import os
import socket
import threading
import time
import uuid
import warnings

from freezer_api.core import notify
from freezer_api.storage import base

LOG = logging.getLogger(__name__)

GROUP = 'oslo_messaging_notifications'
# The name of the send cursors in the store (one per project).
CURSOR = 'notifications'
MAX_BACKOFF = 30.0
# Seconds a lease lasts without renewal (a dead process's projects wait
# that long), and between two scans for projects left behind.
LEASE = 60.0
RESUME_INTERVAL = 60.0
# Records read and sent before the cursor moves.
BATCH = 100
# Records committed here kept in memory for sending (beyond, they are read
# back from the trail).
MAX_PENDING = 10_000
# Seconds a project may look behind with no record to send before its
# cursor skips what was purged.
GAP_GRACE = 300.0
# Seconds a lease is kept after its project's last send, so that a run
# of writes costs one cursor write per pass, not a lease and a release.
LINGER = 1.0
# Seconds at least between two moves of a kept lease's cursor (what was
# sent since is sent again if the process dies).
MOVE_EVERY = 0.5
# Seconds since its newest record after which a project with no send
# cursor (a store written before there were any) is taken as sent.
SEED_AGE = 3600.0
# Sends that fail before the thread backs off (oslo.messaging's own
# reconnection attempts per send).
SEND_RETRY = 1


def _oslo_messaging():
    # NOTE: oslo.messaging imports oslo.service, which warns that eventlet
    # is deprecated (EventletDeprecationWarning, a plain Warning); nothing
    # here uses eventlet.
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        import oslo_messaging
    return oslo_messaging


def register_opts(conf):
    """Register oslo.messaging's notification options on ``conf``."""
    om = _oslo_messaging()
    from oslo_messaging import opts as om_opts
    for group, options in om_opts.list_opts():
        if group == GROUP:
            conf.register_opts(options, group=GROUP)
    om.set_transport_defaults('freezer')
    return om


def enabled(conf) -> bool:
    drivers = [d for d in (conf[GROUP].driver or []) if d != 'noop']
    return bool(drivers)


def _micros(seconds):
    return int(seconds * 1_000_000)


class _LeaseLost(Exception):
    """Another process holds the project's cursor now."""


class Notifications:
    """The sender of one process: ``committed`` (the audit hook),
    ``health_event`` and a background thread."""

    def __init__(self, storage, send, clock=time.time,
                 max_backoff=MAX_BACKOFF, lease=LEASE,
                 resume_interval=RESUME_INTERVAL, batch=BATCH,
                 max_pending=MAX_PENDING, gap_grace=GAP_GRACE,
                 seed_age=SEED_AGE, linger=LINGER, move_every=MOVE_EVERY):
        """``send(event_type, payload)`` returns once the bus took the
        event and raises when it did not."""
        self._storage = storage
        self._send = send
        self._clock = clock
        self._max_backoff = max_backoff
        self._lease = lease
        self._resume_interval = resume_interval
        self._batch = batch
        self._max_pending = max_pending
        self._gap_grace = gap_grace
        self._seed_age = seed_age
        self._linger = linger
        self._every = move_every
        # project -> when this process last moved its cursor
        self._moved: dict[str, float] = {}
        # project -> (position, when its lease ends, when last used): the
        # leases kept between passes
        self._held: dict[str, tuple[int, float, float]] = {}
        # projects whose send cursor is known to exist
        self._known: set[str] = set()
        self.holder = (f'{socket.gethostname()}:{os.getpid()}:'
                       f'{uuid.uuid4().hex[:12]}')[-128:]
        # health events claimed here, in order
        self._events: collections.deque = collections.deque()
        # project -> the highest seq known to be committed (to send)
        self._due: dict[str, int] = {}
        # project -> earliest time to look at it again
        self._not_before: dict[str, float] = {}
        # project -> {seq: record} committed here and not yet sent
        self._recent: dict[str, dict[int, dict]] = {}
        self._recent_count = 0
        # project -> when it was first seen behind with nothing to send
        self._empty_since: dict[str, float] = {}
        self._cond = threading.Condition()
        self._stopped = False
        self.failures = 0
        self.sent = 0
        self.scans = 0  # looks for projects left behind, done
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name='freezer-notifications')
        self._thread.start()

    # -- producers ---------------------------------------------------------

    def committed(self, records):
        """Note the events of committed audit records (never blocks)."""
        with self._cond:
            for record in records:
                project, seq = record['project_id'], record['seq']
                self._due[project] = max(self._due.get(project, 0), seq)
                if self._recent_count < self._max_pending:
                    self._recent.setdefault(project, {})[seq] = record
                    self._recent_count += 1
            self._cond.notify()

    def health_event(self, kind, project_id, subject_id, occurrence,
                     details=None):
        """Send one health occurrence, once across every process; return
        whether this call claimed it."""
        at = _micros(self._clock())
        event_type, payload = notify.health_payload(
            kind, project_id, subject_id, occurrence, at, details)
        if not self._storage.claim_event(payload['event_id'], at):
            return False
        with self._cond:
            self._events.append((event_type, payload))
            self._cond.notify()
        return True

    # -- the sending thread ------------------------------------------------

    def pending(self):
        with self._cond:
            return len(self._events) + len(self._due)

    def stop(self, timeout=5.0):
        """Stop sending: the lease held is given up, with the cursor past
        what was sent."""
        with self._cond:
            self._stopped = True
            self._cond.notify()
        self._thread.join(timeout)
        close = getattr(self._send, 'close', None)
        if close is not None:
            close()

    def _pause(self):
        delay = min(self._max_backoff, 0.5 * 2 ** min(self.failures, 6))
        with self._cond:
            if not self._stopped:
                self._cond.wait(delay)

    def _deliver(self, event_type, payload, renew=None):
        """Send until the bus takes it (False: stopped first). ``renew``
        is called before each retry."""
        while True:
            try:
                self._send(event_type, payload)
            except Exception as exc:  # noqa: BLE001 - the bus is down
                if not self.failures:
                    LOG.warning('The message bus refused a notification; '
                                'retrying until it is back: %s', exc)
                self.failures += 1
                self._pause()
                if self._stopped:
                    return False
                if renew is not None:
                    renew()
                continue
            if self.failures:
                LOG.info('The message bus is back after %d failed sends',
                         self.failures)
            self.failures = 0
            self.sent += 1
            return True

    def _run(self):
        next_scan = self._clock()
        while True:
            with self._cond:
                if self._stopped:
                    self._release_held(None)
                    return
                event = self._events[0] if self._events else None
            if event is not None:
                if self._deliver(*event):
                    with self._cond:
                        self._events.popleft()
                continue
            now = self._clock()
            if now >= next_scan:
                self._scan(now)
                next_scan = self._clock() + self._resume_interval
                continue
            project = self._next_project(now)
            if project is not None:
                self._send_project(project)
                continue
            self._release_held(now)
            with self._cond:
                if self._stopped or self._events:
                    continue
                wake = min([next_scan] + [
                    self._not_before.get(p, now) for p in self._due] + [
                    used + self._linger for _, _, used in self._held.values()])
                self._cond.wait(max(0.0, wake - self._clock()))

    def _release_held(self, now):
        """Give up the leases kept past their linger (all: ``now`` None)."""
        for project, (position, _, used) in list(self._held.items()):
            if now is not None and now - used < self._linger:
                continue
            del self._held[project]
            try:
                self._storage.advance_cursor(CURSOR, project, self.holder,
                                             position, 0)
            except Exception as exc:  # noqa: BLE001 - it will expire
                LOG.warning('Could not give a send cursor up: %s', exc)

    def _next_project(self, now):
        with self._cond:
            for project in self._due:
                if self._not_before.get(project, 0) <= now:
                    return project
        return None

    def _later(self, project, delay):
        with self._cond:
            self._not_before[project] = self._clock() + delay

    def _scan(self, now):
        """Mark due every project whose cursor is behind its head and
        not leased by a running process."""
        try:
            for project in self._storage.audit_projects():
                head = self._storage.audit_head(project)
                cursor = self._storage.get_cursor(CURSOR, project)
                position = cursor.position if cursor else 0
                if head is None or head[0] <= position:
                    continue
                if cursor and cursor.holder not in ('', self.holder) and (
                        cursor.until > _micros(now)):
                    continue  # its holder is at it
                with self._cond:
                    self._due[project] = max(self._due.get(project, 0),
                                             head[0])
        except Exception as exc:  # noqa: BLE001 - tried again next scan
            LOG.warning('Could not look for notifications left unsent: %s',
                        exc)
            return
        self.scans += 1

    def _seed(self, project):
        """A project with no send cursor: when its newest record is older
        than ``SEED_AGE`` (its trail predates send cursors, and its events
        were its writers' to send), its cursor starts at its head;
        otherwise at 0, and its retained trail is sent."""
        storage = self._storage
        if storage.get_cursor(CURSOR, project) is None:
            head = storage.audit_head(project)
            now = self._clock()
            newest = head and storage.audit_chain(project, head[0] - 1, 1)
            if head and (not newest or newest[0]['at'] < _micros(
                    now - self._seed_age)):
                cursor, _ = self._take(project)
                if cursor is not None and cursor.position == 0:
                    storage.advance_cursor(CURSOR, project, self.holder,
                                           head[0], 0)
        self._known.add(project)

    def _take(self, project):
        now = self._clock()
        cursor = self._storage.lease_cursor(
            CURSOR, project, self.holder, _micros(now),
            _micros(now + self._lease))
        return cursor, now

    def _send_project(self, project):
        with self._cond:
            wanted = self._due.get(project, 0)
        held = self._held.pop(project, None)
        cursor: base.Cursor | None
        try:
            if held is not None and (
                    held[1] - self._clock() > self._lease / 2):
                # still ours for a while: no need to ask
                cursor = base.Cursor(CURSOR, project, held[0], self.holder,
                                     _micros(held[1]))
                leased_at = held[1] - self._lease
            else:
                if project not in self._known:
                    self._seed(project)
                cursor, leased_at = self._take(project)
                if cursor is not None and held is not None:
                    # sent, not yet written
                    cursor = base.Cursor(CURSOR, project,
                                         max(held[0], cursor.position),
                                         self.holder, cursor.until)
        except Exception as exc:  # noqa: BLE001 - the store is down
            LOG.warning('Could not take the send cursor of a project: %s',
                        exc)
            self._later(project, min(self._max_backoff, 5.0))
            return
        if cursor is None:
            # another process sends it now: look again once it may be done
            self._later(project, min(self._lease / 4, 1.0))
            return
        position = cursor.position
        lease = {'at': leased_at}

        def renew():
            now = self._clock()
            if now - lease['at'] < self._lease / 3:
                return
            try:
                renewed, lease['at'] = self._take(project)
            except Exception as exc:  # noqa: BLE001 - kept, may expire
                LOG.warning('Could not renew a send cursor: %s', exc)
                return
            if renewed is None:
                raise _LeaseLost()

        try:
            position, kept = self._send_from(project, position, wanted,
                                             renew, lease['at'] + self._lease)
        except _LeaseLost:
            LOG.warning('Another process took over sending the events of '
                        'project %s', project)
            self._forget(project, position, drop=True)
            return
        except Exception as exc:  # noqa: BLE001 - the store is down
            LOG.warning('Could not send the events of a project: %s', exc)
            self._later(project, min(self._max_backoff, 5.0))
            kept = None
        if kept is not None and not self._stopped:
            # kept a little, for the next pass
            self._held[project] = (position, kept, self._clock())
        else:
            # give the lease up, with the cursor where it is
            try:
                self._storage.advance_cursor(CURSOR, project, self.holder,
                                             position, 0)
            except Exception as exc:  # noqa: BLE001 - it will expire
                LOG.warning('Could not give a send cursor up: %s', exc)
        self._forget(project, position)

    def _send_from(self, project, position, wanted, renew, leased_until):
        """Send the records after ``position``; return the new position
        and, when caught up, when the lease ends (to keep it a little);
        None: to give it up now.

        The cursor moves (renewing the lease) after each full batch, and
        after the last one at most every ``MOVE_EVERY`` seconds: a lease
        kept between passes holds the position sent since, written when
        it is given up.
        """
        lease_ends = leased_until
        while not self._stopped:
            records = self._records_after(project, position)
            if not records:
                return self._caught_up(project, position, wanted), None
            self._empty_since.pop(project, None)
            sent = position
            for record in records:
                if not self._deliver(*notify.document_event(record),
                                     renew=renew):
                    break
                sent = record['seq']
            done = len(records) < self._batch and sent == records[-1]['seq']
            now = self._clock()
            if sent > position and (
                    not done or self._stopped
                    or now - self._moved.get(project, 0) >= self._every):
                if not self._storage.advance_cursor(
                        CURSOR, project, self.holder, sent,
                        _micros(now + self._lease)):
                    raise _LeaseLost()
                self._moved[project] = now
                lease_ends = now + self._lease
            position = max(position, sent)
            if done:
                if wanted > position:
                    # committed, not readable yet (a search index lags)
                    self._later(project, min(self._max_backoff, 1.0))
                    return position, None
                return position, lease_ends
        return position, None

    def _caught_up(self, project, position, wanted):
        """Nothing more to read after ``position``: if ``wanted`` is
        beyond, look again later (a record not yet searchable), and after
        GAP_GRACE take it as purged. Return the position."""
        if wanted <= position:
            self._empty_since.pop(project, None)
            return position
        now = self._clock()
        since = self._empty_since.setdefault(project, now)
        if now - since < self._gap_grace:
            self._later(project, min(self._max_backoff, 1.0))
            return position
        LOG.warning('The audit records of project %s up to seq %d were '
                    'purged before their notifications were sent',
                    project, wanted)
        if not self._storage.advance_cursor(CURSOR, project, self.holder,
                                            wanted,
                                            _micros(now + self._lease)):
            raise _LeaseLost()
        self._empty_since.pop(project, None)
        return wanted

    def _records_after(self, project, position):
        """The next records to send: from memory when they follow on,
        else from the audit trail."""
        with self._cond:
            recent = self._recent.get(project, {})
            records: list[dict] = []
            seq = position + 1
            while seq in recent and len(records) < self._batch:
                records.append(recent[seq])
                seq += 1
        if records:
            return records
        return list(self._storage.audit_chain(project, position,
                                              self._batch))

    def _forget(self, project, position, drop=False):
        """Drop what is done: records up to ``position``, and the project
        unless more is due (or ``drop``: another process has it)."""
        with self._cond:
            recent = self._recent.get(project)
            if recent:
                for seq in [s for s in recent if s <= position or drop]:
                    del recent[seq]
                    self._recent_count -= 1
                if not recent:
                    del self._recent[project]
            if drop or self._due.get(project, 0) <= position:
                self._due.pop(project, None)
                self._not_before.pop(project, None)


def _drivers(conf, transport):
    """The configured notification drivers, loaded as oslo.messaging's
    ``Notifier`` loads them (the ``oslo.messaging.notify.drivers`` entry
    points)."""
    from stevedore import named
    manager: named.NamedExtensionManager = named.NamedExtensionManager(
        'oslo.messaging.notify.drivers', names=conf[GROUP].driver,
        invoke_on_load=True, invoke_args=(conf,),
        invoke_kwds={'topics': conf[GROUP].topics, 'transport': transport},
        on_missing_entrypoints_callback=_missing_driver)
    return [extension.obj for extension in manager.extensions]


def _missing_driver(names):
    raise RuntimeError('[oslo_messaging_notifications] driver: no such '
                       f'notification driver: {", ".join(sorted(names))}')


def oslo_sender(conf, om=None):
    """``send(event_type, payload)`` on the configured notifier: it
    returns once every configured driver took the event (the RabbitMQ
    driver: once the broker confirmed it) and raises otherwise."""
    om = om or register_opts(conf)
    from oslo_messaging.notify import messaging as om_messaging
    transport = om.get_notification_transport(conf)
    drivers = _drivers(conf, transport)
    publisher_id = f'backup.{socket.gethostname()}'
    priority = 'info'

    def send(event_type, payload):
        context = {'request_id': payload.get('request_id'),
                   'project_id': payload.get('project_id'),
                   'user_id': payload.get('user_id')}
        message = {'message_id': str(uuid.uuid4()),
                   'publisher_id': publisher_id,
                   'event_type': event_type, 'priority': priority.upper(),
                   'payload': payload,
                   'timestamp': str(datetime.datetime.now(
                       datetime.timezone.utc).replace(tzinfo=None))}
        for driver in drivers:
            if not isinstance(driver, om_messaging.MessagingDriver):
                driver.notify(context, message, priority, SEND_RETRY)
                continue
            # NOTE: the messaging drivers' notify (and so the Notifier's
            # methods) log a failed send and drop the event; the
            # transport's send, which they call, raises, so that the
            # event is sent again. oslo.messaging has no public call that
            # reports the failure: this is its one private call here.
            for topic in driver.topics:
                transport._send_notification(
                    om.Target(topic=f'{topic}.{priority}'), context,
                    message, version=driver.version, retry=SEND_RETRY)

    # the transport's connections close with the Notifications (stop)
    send.close = transport.cleanup  # type: ignore[attr-defined]

    return send


def from_conf(conf, storage):
    """The process's ``Notifications``, or None when none are configured.
    Also makes ``core.notify.health_event`` reach it."""
    # PERF: oslo.messaging takes a second to import: only when the
    # configuration files have the section at all.
    if GROUP not in set(conf.list_all_sections()):
        return None
    om = register_opts(conf)
    if not enabled(conf):
        return None
    notifications = Notifications(storage, oslo_sender(conf, om))
    notify.set_sink(notifications.health_event)
    return notifications
