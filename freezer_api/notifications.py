"""Notifications on the message bus (oslo.messaging), configured as in
other OpenStack services: ``[oslo_messaging_notifications] driver``
(e.g. ``messagingv2``; none or ``noop``: nothing is sent), ``transport_url``
(else ``[DEFAULT] transport_url``), ``topics`` (``notifications``).

What is sent is ``freezer_api.core.notify``'s: one ``<kind>.<action>.end``
per document written (from its audit record, after the commit) and one
event per health occurrence (``health_event``).

Delivery
    A request never waits for the bus: committed records are queued, and
    one thread of the process sends them in order. While the bus is down
    the thread retries (backoff up to 30 s) and the API keeps answering.
    The audit trail is the outbox: past ``MAX_PENDING`` queued events a
    project's further records are not held in memory but read back from
    its audit trail (``seq`` after the last one queued) once the queue has
    drained. So every document event whose record the store keeps is sent
    once the bus is back, as long as the process that committed the
    change runs; a process stopped with events unsent (its queue, or a
    project it had fallen behind on) does not send them (nothing else
    knows how far it got). A health occurrence is claimed in the store
    (``claim_event``) before it is queued, so of all the API processes
    that detect it, exactly one sends it; the same limit applies to it
    once claimed.
"""

import collections
import datetime
import logging
import socket
import threading
import time
import uuid
import warnings

from freezer_api.core import notify

LOG = logging.getLogger(__name__)

GROUP = 'oslo_messaging_notifications'
MAX_PENDING = 10_000
MAX_BACKOFF = 30.0
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
    from oslo_messaging.notify import notifier as om_notifier
    conf.register_opts(om_notifier._notifier_opts, group=GROUP)
    om.set_transport_defaults('freezer')
    return om


def enabled(conf) -> bool:
    drivers = [d for d in (conf[GROUP].driver or []) if d != 'noop']
    return bool(drivers)


class Notifications:
    """The sender of one process: ``committed`` (the audit hook),
    ``health_event`` and a background thread."""

    def __init__(self, storage, send, clock=time.time,
                 max_pending=MAX_PENDING, max_backoff=MAX_BACKOFF):
        """``send(event_type, payload)`` raises when the bus refuses."""
        self._storage = storage
        self._send = send
        self._clock = clock
        self._max_pending = max_pending
        self._max_backoff = max_backoff
        self._queue: collections.deque = collections.deque()
        # project -> seq of the last record queued, for a project whose
        # later records wait in the audit trail
        self._behind: dict[str, int] = {}
        self._last_queued: dict[str, int] = {}
        self._cond = threading.Condition()
        self._stopped = False
        self.failures = 0
        self.sent = 0
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name='freezer-notifications')
        self._thread.start()

    # -- producers ---------------------------------------------------------

    def committed(self, records):
        """Queue the events of committed audit records (never blocks)."""
        with self._cond:
            for record in records:
                project = record['project_id']
                if project in self._behind:
                    continue  # read back from the trail, in order
                if len(self._queue) >= self._max_pending:
                    self._behind[project] = self._last_queued.get(
                        project, record['seq'] - 1)
                    continue
                self._queue.append(('doc', record))
                self._last_queued[project] = record['seq']
            self._cond.notify()

    def health_event(self, kind, project_id, subject_id, occurrence,
                     details=None):
        """Send one health occurrence, once across every process; return
        whether this call claimed it."""
        at = int(self._clock() * 1_000_000)
        event_type, payload = notify.health_payload(
            kind, project_id, subject_id, occurrence, at, details)
        if not self._storage.claim_event(payload['event_id'], at):
            return False
        with self._cond:
            self._queue.append(('event', (event_type, payload)))
            self._cond.notify()
        return True

    # -- the sending thread ------------------------------------------------

    def pending(self):
        with self._cond:
            return len(self._queue) + len(self._behind)

    def stop(self, timeout=5.0):
        with self._cond:
            self._stopped = True
            self._cond.notify()
        self._thread.join(timeout)
        close = getattr(self._send, 'close', None)
        if close is not None:
            close()

    def _next(self):
        with self._cond:
            while not self._queue and not self._behind and not (
                    self._stopped):
                self._cond.wait()
            if self._stopped:
                return None
            if self._queue:
                return self._queue[0]
        self._read_back()
        return False

    def _read_back(self):
        """Queue the next records of one project that fell behind."""
        with self._cond:
            if not self._behind:
                return
            project, after = next(iter(self._behind.items()))
        try:
            records = self._storage.audit_chain(project, after, 500)
        except Exception as exc:  # noqa: BLE001 - retried after a pause
            LOG.warning('Could not read the audit trail to send its '
                        'notifications: %s', exc)
            self._pause()
            return
        with self._cond:
            for record in records:
                self._queue.append(('doc', record))
            if records:
                self._behind[project] = records[-1]['seq']
                self._last_queued[project] = records[-1]['seq']
            if len(records) < 500:
                # caught up: later records are queued as they commit
                del self._behind[project]

    def _pause(self):
        delay = min(self._max_backoff, 0.5 * 2 ** min(self.failures, 6))
        with self._cond:
            self._cond.wait(delay)

    def _run(self):
        while True:
            item = self._next()
            if item is None:
                return
            if item is False:
                continue
            what, value = item
            event_type, payload = (notify.document_event(value)
                                   if what == 'doc' else value)
            try:
                self._send(event_type, payload)
            except Exception as exc:  # noqa: BLE001 - the bus is down
                if not self.failures:
                    LOG.warning('The message bus refused a notification; '
                                'retrying until it is back: %s', exc)
                self.failures += 1
                self._pause()
                continue
            if self.failures:
                LOG.info('The message bus is back after %d failed sends',
                         self.failures)
            self.failures = 0
            self.sent += 1
            with self._cond:
                self._queue.popleft()


def oslo_sender(conf, om=None):
    """``send(event_type, payload)`` on the configured notifier."""
    om = om or register_opts(conf)
    transport = om.get_notification_transport(conf)
    notifier = om.Notifier(
        transport, publisher_id=f'backup.{socket.gethostname()}',
        retry=SEND_RETRY)

    def send(event_type, payload):
        context = {'request_id': payload.get('request_id'),
                   'project_id': payload.get('project_id'),
                   'user_id': payload.get('user_id')}
        message = {'message_id': str(uuid.uuid4()),
                   'publisher_id': notifier.publisher_id,
                   'event_type': event_type, 'priority': 'INFO',
                   'payload': payload,
                   'timestamp': str(datetime.datetime.now(
                       datetime.timezone.utc).replace(tzinfo=None))}
        # NOTE: Notifier.info logs a refused send and drops the event; the
        # drivers themselves raise, so that the event is sent again.
        for driver in notifier._driver_mgr.extensions:
            driver.obj.notify(context, message, 'info', SEND_RETRY)

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
