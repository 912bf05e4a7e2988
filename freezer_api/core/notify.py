"""What freezer-api announces on the message bus (pure: the sending is
``freezer_api.notifications``).

Document events
    One per audit record (``core/audit.py``): ``<kind>.<action>.end`` with
    the kind in the singular (``backup.create.end``, ``job.update.end``,
    ``session.delete.end``, ...). The payload names the document, its
    project, the user, the request id, the version and the names of the
    fields that changed; never the document's content (it holds
    credentials). ``event_id`` is ``<project>:<seq>``, the record's place
    in the project's audit trail.

Health events
    ``freezer.run.failed``, ``freezer.run.missed``, ``freezer.run.lost``,
    ``freezer.rpo.breached``, ``freezer.client.offline``: one per
    occurrence. The ``event_id`` is derived from what identifies the
    occurrence (kind, project, subject, occurrence), so every process
    that detects the same occurrence computes the same id, and the store
    lets only the first claim of an id through.
"""

import hashlib

HEALTH_EVENTS = {
    'run_failed': 'freezer.run.failed',
    'run_missed': 'freezer.run.missed',
    'run_lost': 'freezer.run.lost',
    'rpo_breached': 'freezer.rpo.breached',
    'client_offline': 'freezer.client.offline',
}
_VERBS = {'created': 'create', 'updated': 'update', 'deleted': 'delete'}
_SINGULAR = {'backups': 'backup', 'clients': 'client', 'jobs': 'job',
             'actions': 'action', 'sessions': 'session'}


def document_event(record: dict) -> tuple[str, dict]:
    """``(event_type, payload)`` of one audit record."""
    kind = record['kind']
    event_type = (f'{_SINGULAR.get(kind, kind)}.'
                  f'{_VERBS[record["action"]]}.end')
    payload = {
        'event_id': f'{record["project_id"]}:{record["seq"]}',
        'kind': kind,
        'id': record['doc_id'],
        'project_id': record['project_id'],
        'user_id': record['user_id'],
        'request_id': record.get('request_id'),
        'version': record.get('version'),
        'fields': list(record.get('fields', ())),
        'audit_seq': record['seq'],
        'audit_hash': record['hash'],
        'at': record['at'],
    }
    return event_type, payload


def health_event_id(kind: str, project_id: str, subject_id: str,
                    occurrence: str) -> str:
    """The id of one occurrence: the same wherever it is detected."""
    if kind not in HEALTH_EVENTS:
        raise ValueError(f'unknown health event {kind!r}: one of '
                         f'{", ".join(sorted(HEALTH_EVENTS))}')
    digest = hashlib.sha256('\x00'.join(
        (kind, project_id, subject_id, str(occurrence))).encode('utf-8'))
    return f'{kind}:{digest.hexdigest()[:40]}'


def health_payload(kind: str, project_id: str, subject_id: str,
                   occurrence: str, at: int, details: dict | None = None
                   ) -> tuple[str, dict]:
    """``(event_type, payload)`` of one health event occurrence."""
    payload = {
        'event_id': health_event_id(kind, project_id, subject_id,
                                    occurrence),
        'kind': kind,
        'project_id': project_id,
        'subject_id': subject_id,
        'occurrence': str(occurrence),
        'at': at,
        'details': dict(details or {}),
    }
    return HEALTH_EVENTS[kind], payload


# The process's sender of health events (set where notifications are
# configured: freezer_api.notifications.from_conf).
_sink = None


def set_sink(sink) -> None:
    global _sink
    _sink = sink


def health_event(kind: str, project_id: str, subject_id: str,
                 occurrence: str, details: dict | None = None) -> bool:
    """Announce one health occurrence (``kind``: one of HEALTH_EVENTS;
    ``occurrence``: what tells this occurrence from the next of the same
    subject, e.g. the run's start time). Sent once across every process
    that reports it; False when notifications are off or the occurrence
    was already claimed."""
    if _sink is None:
        health_event_id(kind, project_id, subject_id, occurrence)  # checks
        return False
    return bool(_sink(kind, project_id, subject_id, occurrence, details))
