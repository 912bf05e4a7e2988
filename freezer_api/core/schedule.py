"""When freezer-scheduler runs a job: its ``job_schedule`` read with the
same rules and the same library (APScheduler 3) as the scheduler.

freezer-scheduler 19 turns a job's schedule into one APScheduler trigger,
trying in this order:

- ``schedule_date``: a date trigger at that time (a time without offset
  is the scheduler host's local time);
- ``schedule_interval``: an interval trigger (``continuous`` is every
  second), counted from ``schedule_start_date`` when that is still in the
  future when the scheduler arms the job, else from 2 s after arming;
  without a start date the first run is one interval after arming;
- any cron field (``schedule_year`` ... ``schedule_second``): a cron
  trigger, from ``schedule_start_date`` when given;
- nothing: one run 2 s after arming.

``schedule_end_date`` counts only with a start date, and only when it is
not before it. Start and end dates without an offset are UTC (the
scheduler parses them with oslo.utils). The scheduler's triggers live in
its host's local time zone; here that zone is the job's
``schedule_timezone`` (an IANA name), else the configured default.

The server cannot see when a scheduler armed the job (it does at its
first poll after the job or its schedule changed, and again after a
restart); it counts from the job's ``time_created``.

Pure: no I/O beyond the time zone database.
"""

import dataclasses
import datetime
import zoneinfo

from apscheduler import util as aps_util
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from oslo_utils import timeutils

from freezer_api.core.errors import InvalidInput
from freezer_api.core.errors import Unprocessable

TIMEZONE_FIELD = 'schedule_timezone'
CRON_FIELDS = ('year', 'month', 'day', 'week', 'day_of_week', 'hour',
               'minute', 'second')
# freezer-scheduler arms a job without a (future) start this much later.
ARM_DELAY = datetime.timedelta(seconds=2)
MAX_COUNT = 100
DEFAULT_COUNT = 10
UTC = datetime.timezone.utc

GAP = 'gap'          # the wall-clock time asked for does not exist
OVERLAP = 'overlap'  # the wall-clock time happens twice


def time_zone(name) -> zoneinfo.ZoneInfo:
    """The IANA zone ``name``, or InvalidInput saying why not."""
    if not isinstance(name, str) or not name or len(name) > 64:
        raise InvalidInput(f'{TIMEZONE_FIELD} must be an IANA time zone '
                           'name such as "Europe/Berlin" or "UTC"')
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidInput(f'Unknown time zone {name[:64]!r} in '
                           f'{TIMEZONE_FIELD}: use an IANA name such as '
                           '"Europe/Berlin" or "UTC"')


def check_time_zone(schedule) -> None:
    """Raise InvalidInput if a job schedule names an unknown zone."""
    if isinstance(schedule, dict) and TIMEZONE_FIELD in schedule:
        time_zone(schedule[TIMEZONE_FIELD])


@dataclasses.dataclass(frozen=True)
class Run:
    """One expected run: the instant, and how its wall-clock time reads."""

    at: datetime.datetime        # aware, in the job's zone
    dst: str | None = None       # GAP, OVERLAP or None

    def as_dict(self):
        utc = self.at.astimezone(UTC)
        local = utc.astimezone(self.at.tzinfo)
        return {'utc': utc.strftime('%Y-%m-%dT%H:%M:%S')
                + (f'.{utc.microsecond:06d}' if utc.microsecond else '')
                + 'Z',
                'local': local.isoformat(),
                'utc_offset': _offset(local.utcoffset()
                                      or datetime.timedelta()),
                'dst': self.dst}


def _offset(delta: datetime.timedelta) -> str:
    minutes = round(delta.total_seconds() / 60)
    sign = '-' if minutes < 0 else '+'
    return f'{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}'


def _wall_clock_flag(wall: datetime.datetime, tz) -> str | None:
    """GAP or OVERLAP when the naive wall-clock time ``wall`` is not one
    instant in ``tz``."""
    first = wall.replace(tzinfo=tz, fold=0)
    second = wall.replace(tzinfo=tz, fold=1)
    if first.utcoffset() == second.utcoffset():
        return None
    back = first.astimezone(UTC).astimezone(tz).replace(tzinfo=None)
    return GAP if back != wall.replace(fold=0) else OVERLAP


def _utc_date(text):
    """A start or end date as the scheduler reads it (oslo.utils)."""
    return timeutils.parse_isotime(text)


def _describe(kind, **fields):
    return {'kind': kind, **{k: v for k, v in fields.items()
                             if v is not None}}


def trigger(schedule: dict, tz, armed_at: datetime.datetime):
    """``(trigger, description, wall_flag)`` of a job schedule.

    ``armed_at`` is when the scheduler is taken to have armed the job.
    ``wall_flag`` flags the one run of a date trigger whose local time
    was given without offset. Raises Unprocessable when freezer-scheduler
    could not schedule the job either.
    """
    schedule = schedule or {}
    try:
        return _trigger(schedule, tz, armed_at)
    except (ValueError, TypeError, KeyError, OverflowError) as exc:
        raise Unprocessable(
            f'freezer-scheduler cannot schedule this job: {exc}'[:300])


def _trigger(schedule, tz, armed_at):
    start = end = None
    if schedule.get('schedule_start_date'):
        start_text = schedule['schedule_start_date']
        start = armed_at + ARM_DELAY
        if int(_utc_date(start_text).timestamp()) > int(
                armed_at.timestamp()):
            start = _utc_date(start_text)
        if schedule.get('schedule_end_date'):
            end_text = schedule['schedule_end_date']
            end = _utc_date(end_text)
            if int(_utc_date(start_text).timestamp()) > int(
                    end.timestamp()):
                end = None
    run_date = schedule.get('schedule_date')
    if run_date:
        # NOTE: parse once in a marker zone to learn whether the text had
        # an offset: a local time may fall in a gap or an overlap.
        marker = datetime.timezone(datetime.timedelta(0), 'wall-clock')
        parsed = aps_util.convert_to_datetime(run_date, marker, 'run_date')
        flag = (_wall_clock_flag(parsed.replace(tzinfo=None), tz)
                if parsed.tzinfo is marker else None)
        return (DateTrigger(run_date=run_date, timezone=tz),
                _describe('date', run_date=run_date), flag)
    interval = schedule.get('schedule_interval')
    if interval:
        if interval == 'continuous':
            unit, value = 'seconds', 1
        else:
            value, unit = interval.split(' ')
            value = int(value)
        if start is None:
            # NOTE: APScheduler's own default, counted from the arming.
            start = armed_at + datetime.timedelta(**{unit: value})
        return (IntervalTrigger(start_date=start, end_date=end, timezone=tz,
                                **{unit: value}),
                _describe('interval', continuous=interval == 'continuous'
                          or None,
                          seconds=int(datetime.timedelta(
                              **{unit: value}).total_seconds()),
                          start_date=_iso(start), end_date=_iso(end)),
                None)
    fields = {key: schedule['schedule_' + key] for key in CRON_FIELDS
              if 'schedule_' + key in schedule}
    if fields:
        return (CronTrigger(start_date=start, end_date=end, timezone=tz,
                            **fields),
                _describe('cron', fields=fields, start_date=_iso(start),
                          end_date=_iso(end)),
                None)
    return (DateTrigger(run_date=armed_at + ARM_DELAY, timezone=tz),
            _describe('date', run_date=_iso(armed_at + ARM_DELAY)), None)


def _iso(moment):
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace('+00:00', 'Z')


def _run(moment, tz, wall_flag):
    moment = moment.astimezone(tz) if moment.tzinfo is not tz else moment
    if wall_flag is not None:
        return Run(moment, wall_flag)
    # NOTE: APScheduler's cron trigger keeps the wall-clock time it asked
    # for: in a gap it is one that does not exist (the run happens at the
    # instant it reads as with the offset before the change).
    return Run(moment, _wall_clock_flag(moment.replace(tzinfo=None), tz))


def next_runs(schedule: dict, tz, armed_at, now, count=DEFAULT_COUNT):
    """The next ``count`` runs at or after ``now`` (aware datetimes)."""
    trig, _, wall_flag = trigger(schedule, tz, armed_at)
    runs: list[Run] = []
    previous = None
    moment = trig.get_next_fire_time(None, now)
    while moment is not None and len(runs) < count:
        if moment.astimezone(UTC) >= now:
            runs.append(_run(moment, tz, wall_flag))
        previous = moment
        moment = trig.get_next_fire_time(previous, previous)
        # NOTE: compared in UTC: datetimes of one zone compare by wall
        # clock, so the two runs of an overlap would look equal.
        if moment is not None and (moment.astimezone(UTC)
                                   <= previous.astimezone(UTC)):
            break  # a trigger that does not move on would loop
    return runs


def check_count(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not (
            1 <= value <= MAX_COUNT):
        raise InvalidInput(f'count must be an integer from 1 to {MAX_COUNT}')
    return value


def job_schedule(doc: dict, default_tz: zoneinfo.ZoneInfo, now: float,
                 count=DEFAULT_COUNT) -> dict:
    """The answer of ``GET .../jobs/{id}/schedule`` for a job document."""
    count = check_count(count)
    schedule = doc.get('job_schedule') or {}
    if schedule.get(TIMEZONE_FIELD):
        try:
            tz, source = time_zone(schedule[TIMEZONE_FIELD]), 'job'
        except InvalidInput as exc:
            # NOTE: stored before this rule, or a zone the time zone
            # database of this host no longer has
            raise Unprocessable(exc.message)
    else:
        tz, source = default_tz, 'default'
    created = schedule.get('time_created')
    if isinstance(created, bool) or not isinstance(created, int) or (
            created < 0):
        created = now
    armed_at = datetime.datetime.fromtimestamp(created, UTC)
    now_at = datetime.datetime.fromtimestamp(now, UTC)
    _, description, _ = trigger(schedule, tz, armed_at)
    runs = [run.as_dict()
            for run in next_runs(schedule, tz, armed_at, now_at, count)]
    return {'job_id': doc.get('job_id'),
            'timezone': tz.key, 'timezone_source': source,
            'trigger': description,
            'next_run': runs[0]['utc'] if runs else None,
            'runs': runs}
