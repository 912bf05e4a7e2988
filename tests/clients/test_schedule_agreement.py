"""The server's run times agree with freezer-scheduler's own.

The real freezer-scheduler 19 code (``Job.get_schedule_args``, in the
clients' virtualenv) turns each job schedule of tests/core/test_schedule.py
into APScheduler arguments, a real ``BackgroundScheduler`` (not started)
builds the trigger in the host's local zone (``TZ``), and the trigger
lists the run times. The clock the scheduler reads when it arms the job
is set to the case's arming time (the only thing stubbed: a test cannot
wait for a date).
"""

import json
import subprocess

import pytest

from freezer_api.core import schedule
from tests.core import test_schedule

SCHEDULER_SIDE = r'''
import datetime, json, sys
from oslo_utils import timeutils
from apscheduler.schedulers import background
from apscheduler.triggers import interval as aps_interval
from freezer.scheduler import scheduler_job

case = json.load(sys.stdin)
armed = datetime.datetime.fromisoformat(case['armed'])
now = datetime.datetime.fromisoformat(case['now'])


class ArmingClock(datetime.datetime):
    @classmethod
    def now(cls, tz=None):
        if tz is None:  # naive local time, as datetime.now() gives
            return armed.astimezone().replace(tzinfo=None)
        return armed.astimezone(tz)


class DatetimeModule:
    timedelta = datetime.timedelta
    timezone = datetime.timezone


DatetimeModule.datetime = ArmingClock


timeutils.set_time_override(armed)
aps_interval.datetime = ArmingClock
scheduler_job.datetime = DatetimeModule

job = scheduler_job.Job.__new__(scheduler_job.Job)
job.job_doc = {'job_id': 'j', 'job_schedule': case['job_schedule']}
kwargs = job.get_schedule_args()
sched = background.BackgroundScheduler()
added = sched.add_job(print, id='j', misfire_grace_time=3600, **kwargs)
trigger = added.trigger
times, previous = [], None
fire = trigger.get_next_fire_time(None, now)
while fire is not None and len(times) < case['count']:
    if fire >= now:
        times.append(fire.astimezone(datetime.timezone.utc).isoformat())
    previous = fire
    fire = trigger.get_next_fire_time(previous, previous)
    if fire is not None and fire.astimezone(datetime.timezone.utc) <= (
            previous.astimezone(datetime.timezone.utc)):
        break
print(json.dumps({'zone': str(sched.timezone), 'times': times}))
'''


def scheduler_times(venv, tmp_path, job_schedule, zone, now, count):
    case = {'job_schedule': job_schedule,
            'armed': test_schedule.at(test_schedule.ARMED).isoformat(),
            'now': test_schedule.at(now).isoformat(), 'count': count}
    out = subprocess.run(
        [venv.python, '-c', SCHEDULER_SIDE], input=json.dumps(case),
        capture_output=True, text=True, timeout=120,
        env=venv.env(tmp_path, TZ=zone))
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout.strip().splitlines()[-1])
    assert answer['zone'] == zone  # the scheduler runs in the host's zone
    return [test_schedule.at(text) for text in answer['times']]


@pytest.mark.parametrize('name', sorted(test_schedule.CASES))
def test_server_and_scheduler_agree(name, openstack_clients, tmp_path):
    job_schedule, zone, now, count, expected = test_schedule.CASES[name]
    # the agent ignores the field that tells the server the zone
    theirs = scheduler_times(openstack_clients, tmp_path,
                             {**job_schedule, 'schedule_timezone': zone},
                             zone, now, count)
    ours = schedule.next_runs(job_schedule, schedule.time_zone(zone),
                              test_schedule.at(test_schedule.ARMED),
                              test_schedule.at(now), count)
    # NOTE: in UTC: an instant in a gap or fold never equals one of
    # another zone (PEP 495)
    assert [run.at.astimezone(schedule.UTC) for run in ours] == theirs
    assert len(theirs) == len(expected)
