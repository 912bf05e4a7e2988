"""Backup health rules (issue 15): run records, missed, stale and lost runs,
recovery point objectives.

Pure functions of documents and times (seconds since the epoch); the
managers in ``core.runs``, ``core.presence`` and ``core.coverage`` read
and write the store around them.

A run record (kind ``runs``)::

    {"run_id", "job_id", "client_id", "session_id", "session_tag",
     "status": running | completed | lost | missed,
     "result": "" | success | fail | aborted | lost | missed,
     "reason": client_offline | overlap | not_started (missed runs only),
     "start", "end", "expected_at", "last_report", "backups": [...],
     "events": [{"event", "at"}], "project_id", "user_id"}

Run ids are derived from the job and the start time the scheduler
reported (or the expected time of a missed run), so that every API
process, and every retry of a report, names the same record.
"""

import collections
import datetime
import hashlib

from freezer_api.core import schedule as run_times

RUNNING = 'running'
COMPLETED = 'completed'
LOST = 'lost'
MISSED = 'missed'
STATUSES = (RUNNING, COMPLETED, LOST, MISSED)

RESULTS = ('success', 'fail', 'aborted')
REASONS = ('client_offline', 'overlap', 'not_started')

# What the runs list shows after these many days, and what coverage counts.
RECENT_DAYS = 7
DAY = 86400

# Run records sort newest first in the store's ascending order of
# created_at: their created_at counts down from here (microseconds).
NEWEST_FIRST_BASE = 2 ** 62

# At most this many expected run times are checked per job and read.
MAX_EXPECTED = 500

# Job statuses where freezer-scheduler runs nothing until told again.
HELD_EVENTS = ('stop', 'abort', 'remove')


def _digest(*parts) -> str:
    text = '\n'.join(str(part) for part in parts)
    return hashlib.sha256(text.encode('utf-8')).hexdigest()[:32]


def run_id(job_id: str, start: int) -> str:
    """The id of the run of ``job_id`` that started at ``start``."""
    return _digest('run', job_id, start)


def missed_id(job_id: str, expected_at: int) -> str:
    """The id of the missed run of ``job_id`` expected at ``expected_at``."""
    return _digest('missed', job_id, expected_at)


def created_at(moment: float) -> int:
    """The ``created_at`` that lists a run at ``moment`` newest first."""
    return NEWEST_FIRST_BASE - int(moment * 1_000_000)


def _int(value, default=-1) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        return default
    return value


# -- the ledger: what a job report means -----------------------------------

def reported_start(job_doc: dict) -> int | None:
    """The start time of the run a job document reports as running."""
    schedule = job_doc.get('job_schedule') or {}
    started = _int(schedule.get('time_started'))
    if schedule.get('status') == RUNNING and started > 0:
        return started
    return None


def reported_end(job_doc: dict) -> tuple[int, int, str] | None:
    """``(start, end, result)`` of the run a job document reports as
    ended: not running, a known result, and an end at or after the
    start."""
    schedule = job_doc.get('job_schedule') or {}
    started = _int(schedule.get('time_started'))
    ended = _int(schedule.get('time_ended'))
    result = schedule.get('result')
    if (schedule.get('status') != RUNNING and result in RESULTS
            and started > 0 and ended >= started):
        return started, ended, result
    return None


def _record_of(job_doc: dict, record_id: str, **run) -> dict:
    """A run record: what it keeps of its job (records outlive the job's
    later changes), then ``run``'s own fields."""
    return {
        'run_id': record_id,
        'job_id': job_doc['job_id'],
        'client_id': job_doc.get('client_id', ''),
        'description': job_doc.get('description', ''),
        'session_id': job_doc.get('session_id') or '',
        'session_tag': _int(job_doc.get('session_tag'), 0),
        'backups': [], 'events': [],
        'project_id': job_doc.get('project_id', ''),
        'user_id': job_doc.get('user_id', ''),
        **run,
    }


def new_run(job_doc: dict, start: int, now: int) -> dict:
    """The record of a run that starts."""
    return _record_of(job_doc, run_id(job_doc['job_id'], start),
                      status=RUNNING, result='', start=start, end=-1,
                      last_report=now)


def ended_run(run: dict, end: int, result: str, now: int) -> dict:
    """The record once its scheduler reported the end (even after the
    run was given up as lost: the scheduler's word wins)."""
    ended = {**run, 'status': COMPLETED, 'result': result, 'end': end,
             'last_report': max(now, _int(run.get('last_report'), 0))}
    if run.get('status') == LOST:
        ended['reported_after_lost'] = True
    return ended


# -- stale and lost ---------------------------------------------------------

def lease(job_doc: dict | None, default: int) -> int:
    """Seconds a run of the job may go without a report."""
    value = (job_doc or {}).get('run_lease')
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return default
    return value


def is_overdue(run: dict, lease_seconds: int, now: float) -> bool:
    """A running record whose scheduler has said nothing for longer than
    the lease."""
    last = _int(run.get('last_report'), _int(run.get('start'), 0))
    return run.get('status') == RUNNING and now - last > lease_seconds


def lost_run(run: dict, lease_seconds: int) -> dict:
    """The record of an overdue run, ended as lost when its lease ran
    out."""
    last = _int(run.get('last_report'), _int(run.get('start'), 0))
    return {**run, 'status': LOST, 'result': LOST,
            'end': last + lease_seconds}


def is_stale(job_doc: dict, current_run: dict | None, lease_seconds: int,
             now: float) -> bool:
    """The job still says running, and its run is overdue or lost."""
    if reported_start(job_doc) is None:
        return False
    if current_run is None:
        start = reported_start(job_doc) or 0
        return now - start > lease_seconds
    return current_run.get('status') == LOST or is_overdue(
        current_run, lease_seconds, now)


# -- schedule: interval, grace, RPO -----------------------------------------

def _zone(schedule: dict, default_tz):
    name = schedule.get(run_times.TIMEZONE_FIELD)
    if name:
        try:
            return run_times.time_zone(name)
        except Exception:  # noqa: BLE001 - reported by the schedule route
            return default_tz
    return default_tz


def trigger_of(job_doc: dict, default_tz):
    """``(trigger, description)`` of a job as its scheduler arms it, or
    ``(None, None)`` when the scheduler could not schedule it."""
    schedule = job_doc.get('job_schedule') or {}
    created = _int(schedule.get('time_created'), 0)
    armed_at = datetime.datetime.fromtimestamp(max(created, 0),
                                               run_times.UTC)
    try:
        trig, description, _ = run_times.trigger(
            schedule, _zone(schedule, default_tz), armed_at)
    except Exception:  # noqa: BLE001 - a schedule the scheduler rejects
        return None, None
    return trig, description


def interval_of(trig, description, now: float) -> int | None:
    """Seconds between two runs: the interval, or the gap between the next
    two runs of a cron schedule; None for a single run."""
    if description is None or trig is None:
        return None
    if description.get('kind') == 'interval':
        return int(description['seconds'])
    if description.get('kind') != 'cron':
        return None
    at = datetime.datetime.fromtimestamp(now, run_times.UTC)
    first = trig.get_next_fire_time(None, at)
    if first is None:
        return None
    second = trig.get_next_fire_time(first, first)
    if second is None:
        return None
    return max(1, int((second - first).total_seconds()))


def grace(interval: int | None, minimum: int, percent: int) -> int:
    """Seconds after an expected time within which a run must start."""
    return max(minimum, int((interval or 0) * percent / 100))


def rpo(job_doc: dict, interval: int | None) -> tuple[int | None, str]:
    """``(seconds, source)``: the job's ``rpo``, else twice its interval
    (``default``), else ``(None, 'none')``."""
    value = job_doc.get('rpo')
    if not isinstance(value, bool) and isinstance(value, int) and value > 0:
        return value, 'job'
    if interval:
        return 2 * interval, 'default'
    return None, 'none'


def breached(rpo_seconds: int | None, last_success_end: int | None,
             since: int, now: float) -> bool:
    """Whether the newest good backup is older than the RPO (counted from
    ``since``, the job's creation, when it never succeeded)."""
    if rpo_seconds is None:
        return False
    reference = last_success_end if last_success_end is not None else since
    return now - reference > rpo_seconds


def expected_times(trig, start: float, end: float,
                   limit: int = MAX_EXPECTED) -> list[int]:
    """The run times of ``trig`` in ``[start, end]`` (the newest ``limit``),
    as whole seconds."""
    if trig is None or end < start:
        return []
    times: list[int] = []
    at = datetime.datetime.fromtimestamp(start, run_times.UTC)
    moment = trig.get_next_fire_time(None, at)
    previous = None
    while moment is not None:
        stamp = moment.timestamp()
        if stamp > end:
            break
        if stamp >= start:
            times.append(int(stamp))
            if len(times) > limit:
                times.pop(0)
        previous = moment
        moment = trig.get_next_fire_time(previous, previous)
        if moment is not None and moment.timestamp() <= previous.timestamp():
            break
    return times


def offline_at(moment: float, presence: dict | None,
               offline_after: int) -> bool:
    """Whether the client was not polling at ``moment``: never seen, silent
    since long before it, or inside a recorded gap between two polls."""
    if not presence:
        return True
    last_seen = _int(presence.get('last_seen'), 0)
    if moment - last_seen > offline_after:
        return True
    for gap in presence.get('gaps') or []:
        if (isinstance(gap, list) and len(gap) == 2
                and gap[0] < moment < gap[1]):
            return True
    return False


def missed_runs(job_doc: dict, expected: list[int], runs: list[dict],
                grace_seconds: int, interval: int | None,
                presence: dict | None, offline_after: int,
                ) -> list[tuple[int, str]]:
    """``(expected_at, reason)`` of each expected time no run answered.

    A run answers an expected time when it started at most ``grace``
    after it, or at most half an interval before it (the scheduler counts
    its interval from when it armed the job, which the server cannot see).
    An unanswered time is missed because the client was offline, else
    because the previous run was still going (``overlap``), else
    ``not_started``.
    """
    started = [(_int(r.get('start')), _int(r.get('end')), r.get('status'))
               for r in runs if r.get('status') != MISSED
               and _int(r.get('start')) > 0]
    early = max(grace_seconds, (interval or 0) // 2)
    missed = []
    for at in expected:
        if any(at - early <= start <= at + grace_seconds
               for start, _, _ in started):
            continue
        # NOTE: an offline client explains a miss first: the run it left
        # "running" when it went away is no reason of its own.
        if offline_at(at, presence, offline_after):
            reason = 'client_offline'
        elif any(start < at and (end < 0 and status == RUNNING or end > at)
                 for start, end, status in started):
            reason = 'overlap'
        else:
            reason = 'not_started'
        missed.append((at, reason))
    return missed


def missed_run(job_doc: dict, expected_at: int, reason: str) -> dict:
    """The record of a missed run."""
    return _record_of(job_doc, missed_id(job_doc['job_id'], expected_at),
                      status=MISSED, result=MISSED, reason=reason,
                      expected_at=expected_at, start=-1, end=-1,
                      last_report=-1)


def watches_schedule(job_doc: dict) -> bool:
    """Whether the scheduler is expected to run the job by its schedule:
    not held by a stop or abort event, not driven by a session."""
    schedule = job_doc.get('job_schedule') or {}
    if schedule.get('event') in HELD_EVENTS or schedule.get(
            'status') in ('stop', 'removed'):
        return False
    return not job_doc.get('session_id')


def iso(moment: float | None) -> str | None:
    if moment is None or moment < 0:
        return None
    return datetime.datetime.fromtimestamp(
        moment, run_times.UTC).strftime('%Y-%m-%dT%H:%M:%SZ')


# -- the per-job summary (kind ``job_health``) -------------------------------
#
# Coverage reads one summary per job instead of settling every job: the
# ledger notes each run it starts or ends in the summary (same
# transaction), and a settle rewrites it whole. A summary is redone when
# it is due (``settle_due``: a missed run may have become due, or the
# running run may be overdue) or when the job's schedule changed
# (``schedule_key``).

SUMMARY_RECENT = 500
# Run times to come a summary keeps.
UPCOMING = 3
# ``settle_due`` of a job that nothing will make due (no schedule to
# watch, nothing running); exact as a double, so the same in every engine.
NEVER = 2 ** 53
# Fields of ``job_schedule`` its scheduler writes at every run: they do not
# change what runs are expected.
_RUN_STATE = ('status', 'event', 'result', 'time_started', 'time_ended',
              'current_pid')


def schedule_key(job_doc: dict) -> list:
    """What of a job decides its expected runs, lease and interval: a
    summary made under another key is redone."""
    schedule = job_doc.get('job_schedule') or {}
    kept = {name: value for name, value in schedule.items()
            if name not in _RUN_STATE}
    return [kept, watches_schedule(job_doc), job_doc.get('run_lease'),
            job_doc.get('client_id', '')]


_RUN_STATE_FIELDS = frozenset(_RUN_STATE)


def patch_reschedules(patch: dict, old: dict, new: dict) -> bool:
    """Whether a job PATCH may change its ``schedule_key`` (``old`` and
    ``new`` the job before and after). PERF: a scheduler's PATCHes of its
    run state (every run, twice) decide it without computing the keys:
    they can only hold or release the job (``watches_schedule``)."""
    schedule = patch.get('job_schedule')
    if (len(patch) != 1 or not isinstance(schedule, dict)
            or not schedule.keys() <= _RUN_STATE_FIELDS):
        return True
    return watches_schedule(old) != watches_schedule(new)


# A summary's recent runs are one string, ``"<at in base 36><code> ..."``,
# newest first: a list would add a search-index row per run to every
# summary write. The codes are capitals and the digits are not, so that
# a reader counts the runs of a kind with ``str.count``.
_CODES: dict[tuple[str, str], str] = {
    (COMPLETED, 'success'): 'S', (COMPLETED, 'fail'): 'F',
    (COMPLETED, 'aborted'): 'A', (MISSED, 'client_offline'): 'O',
    (MISSED, 'overlap'): 'V', (MISSED, 'not_started'): 'N'}
_LOST_CODE, _RUNNING_CODE = 'L', 'R'
_MEANINGS = {code: key for key, code in _CODES.items()}
_MEANINGS[_LOST_CODE] = (LOST, '')
_MEANINGS[_RUNNING_CODE] = (RUNNING, '')
_MISSED_CODES = frozenset(code for (status, _), code in _CODES.items()
                          if status == MISSED)


def _entry(run: dict) -> tuple[int, str]:
    """``(at, code)`` of a run record in a summary."""
    at = run.get('at')
    if not isinstance(at, int):
        start = _int(run.get('start'))
        at = start if start > 0 else _int(run.get('expected_at'), 0)
    status = run.get('status')
    if status == MISSED:
        code = _CODES.get((MISSED, str(run.get('reason'))), 'N')
    elif status == LOST:
        code = _LOST_CODE
    elif status == RUNNING:
        code = _RUNNING_CODE
    else:
        code = _CODES.get((COMPLETED, str(run.get('result'))), 'F')
    return at, code


def _pack(entries) -> str:
    return ' '.join(f'{_base36(at)}{code}' for at, code in entries)


def _unpack(text) -> list[tuple[int, str]]:
    if not isinstance(text, str) or not text:
        return []
    return [(int(item[:-1], 36), item[-1]) for item in text.split(' ')]


def _base36(number: int) -> str:
    digits = '0123456789abcdefghijklmnopqrstuvwxyz'
    if number <= 0:
        return '0'
    out = []
    while number:
        number, rest = divmod(number, 36)
        out.append(digits[rest])
    return ''.join(reversed(out))


def _current(run: dict) -> dict:
    return {'run_id': run.get('run_id'), 'start': _int(run.get('start')),
            'last_report': _int(run.get('last_report')),
            'status': run.get('status')}


def _success(run: dict) -> dict:
    return {'run_id': run.get('run_id'), 'end': _int(run.get('end')),
            'backups': list(run.get('backups') or [])}


def overdue_at(run: dict, lease_seconds: int) -> int:
    """When a running record becomes overdue (``is_overdue``)."""
    last = _int(run.get('last_report'), _int(run.get('start'), 0))
    return last + lease_seconds + 1


def empty_summary(job_doc: dict) -> dict:
    """The summary of a job no settle has seen: due at once."""
    return {'job_id': job_doc['job_id'],
            'client_id': job_doc.get('client_id', ''),
            'project_id': job_doc.get('project_id', ''),
            'user_id': job_doc.get('user_id', ''),
            'schedule_key': None, 'interval': None, 'upcoming': [],
            'settle_due': 0,
            'settled_at': -1, 'last_success': None, 'current': None,
            'recent': ''}


def summary(job_doc: dict, runs: list[dict], last_success: dict | None,
            interval: int | None, upcoming: list, next_check: int | None,
            lease_seconds: int, now: int) -> dict:
    """The summary of a job settled at ``now``: ``runs`` are its settled
    records of the last ``RECENT_DAYS`` (newest first), ``upcoming`` its
    next run times (``[iso, epoch]``), ``next_check`` the first time a
    missed run may be written."""
    current = next((run for run in runs if run.get('status') != MISSED
                    and _int(run.get('start')) > 0), None)
    due = NEVER if next_check is None else next_check
    if current is not None and current.get('status') == RUNNING:
        due = min(due, overdue_at(current, lease_seconds))
    return {**empty_summary(job_doc),
            'schedule_key': schedule_key(job_doc), 'interval': interval,
            'upcoming': [list(pair) for pair in upcoming],
            'settle_due': due, 'settled_at': now,
            'last_success': (None if last_success is None
                             else _success(last_success)),
            'current': None if current is None else _current(current),
            'recent': _pack([_entry(run) for run in runs][:SUMMARY_RECENT])}


def noted(summary_doc: dict, run: dict, lease_seconds: int) -> dict:
    """The summary once the ledger wrote ``run`` (started or ended)."""
    at, code = entry = _entry(run)
    missed = code in _MISSED_CODES
    recent = [old for old in _unpack(summary_doc.get('recent'))
              if old[0] != at or (old[1] in _MISSED_CODES) != missed]
    recent.append(entry)
    recent.sort(key=lambda old: old[0], reverse=True)
    doc = {**summary_doc, 'recent': _pack(recent[:SUMMARY_RECENT])}
    current = summary_doc.get('current')
    if run.get('status') != MISSED and _int(run.get('start')) >= (
            _int((current or {}).get('start'))):
        doc['current'] = _current(run)
    if run.get('status') == RUNNING:
        doc['settle_due'] = min(_int(summary_doc.get('settle_due'), 0),
                                overdue_at(run, lease_seconds))
    best = summary_doc.get('last_success')
    if run.get('result') == 'success' and (
            best is None or _int(run.get('end')) >= _int(best.get('end'))):
        doc['last_success'] = _success(run)
    return doc


def is_due(summary_doc: dict | None, job_doc: dict, now: float) -> bool:
    """Whether a job's summary must be settled again before it is read."""
    if summary_doc is None:
        return True
    return (_int(summary_doc.get('settle_due'), 0) <= now
            or summary_doc.get('schedule_key') != schedule_key(job_doc))


def next_run(summary_doc: dict, now: float) -> str | None | bool:
    """The summary's first run time after ``now`` (ISO), None when the
    schedule has none, False when the summary does not know."""
    upcoming = summary_doc.get('upcoming') or []
    for iso_time, at in upcoming:
        if at > now:
            return iso_time
    return None if len(upcoming) < UPCOMING else False


def meaning(code: str) -> tuple[str, str, str]:
    """``(status, result, reason)`` of a run code of ``recent_counts``."""
    status, detail = _MEANINGS[code]
    if status == MISSED:
        return MISSED, MISSED, detail
    if status == COMPLETED:
        return COMPLETED, detail, ''
    return status, LOST if status == LOST else '', ''


MISSED_CODES = tuple(sorted(_MISSED_CODES))
LOST_CODE = _LOST_CODE


def recent_counts(summary_doc: dict, now: float) -> dict[str, int]:
    """How many runs of each code (``meaning``) the summary has in the
    last ``RECENT_DAYS``.

    PERF: coverage counts every job's runs at every read; when the oldest
    run kept is recent, every run counts and the string is not parsed.
    """
    text = summary_doc.get('recent')
    if not isinstance(text, str) or not text:
        return {}
    low = now - RECENT_DAYS * DAY
    oldest = text[text.rfind(' ') + 1:]
    if int(oldest[:-1], 36) >= low:
        return {code: text.count(code) for code in _MEANINGS
                if code in text}
    return dict(collections.Counter(code for _, code in _since(text, low)))


def _since(text, low) -> list[tuple[int, str]]:
    """``(at, code)`` of the runs of a summary's string at ``low`` or
    later (the string is newest first)."""
    entries = []
    for at, code in _unpack(text):
        if at < low:
            break
        entries.append((at, code))
    return entries


def recent_entries(summary_doc: dict, now: float) -> list[tuple]:
    """The summary's runs of the last ``RECENT_DAYS``: ``(at, status,
    result, reason)``, newest first."""
    return [(at, *meaning(code)) for at, code in _since(
        summary_doc.get('recent'), now - RECENT_DAYS * DAY)]


def next_check(trig, now: float, grace_seconds: int) -> int | None:
    """The first time after ``now`` that a run of ``trig`` may be found
    missed: its first run time not yet past its grace, plus the grace."""
    after = datetime.datetime.fromtimestamp(now - grace_seconds + 1,
                                            run_times.UTC)
    moment = trig.get_next_fire_time(None, after)
    if moment is None:
        return None
    return int(moment.timestamp()) + grace_seconds + 1
