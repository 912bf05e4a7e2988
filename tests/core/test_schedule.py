"""The schedule rules of freezer-scheduler, computed with APScheduler 3
(freezer_api/core/schedule.py), across DST changes in three zones.

The expected times were worked out by hand from the zones' rules in 2026:
Europe/Berlin springs forward on 29 March (02:00 -> 03:00) and falls back
on 25 October (03:00 -> 02:00); America/New_York on 8 March and 1
November; Australia/Sydney falls back on 5 April (03:00 -> 02:00) and
springs forward on 4 October (02:00 -> 03:00). tests/clients/
test_schedule_agreement.py checks the same cases against freezer-scheduler
itself.
"""

import datetime

import pytest

from freezer_api.core import schedule
from freezer_api.core.errors import InvalidInput
from freezer_api.core.errors import Unprocessable

ARMED = '2026-01-01T00:00:00Z'


def at(text):
    return datetime.datetime.fromisoformat(text.replace('Z', '+00:00'))


def runs(job_schedule, zone, now, count=4, armed=ARMED):
    found = schedule.next_runs(job_schedule, schedule.time_zone(zone),
                               at(armed), at(now), count)
    return [(run.as_dict()['utc'], run.as_dict()['local'], run.dst)
            for run in found]


# (job_schedule, zone, now, count, [(utc, local, dst), ...])
CASES = {
    'cron in the Berlin spring gap': (
        {'schedule_hour': '2', 'schedule_minute': '30'}, 'Europe/Berlin',
        '2026-03-27T12:00:00Z', 3, [
            ('2026-03-28T01:30:00Z', '2026-03-28T02:30:00+01:00', None),
            # 02:30 does not exist: it runs at 03:30 CEST
            ('2026-03-29T01:30:00Z', '2026-03-29T03:30:00+02:00', 'gap'),
            ('2026-03-30T00:30:00Z', '2026-03-30T02:30:00+02:00', None)]),
    'cron twice in the Berlin autumn overlap': (
        {'schedule_hour': '2', 'schedule_minute': '30'}, 'Europe/Berlin',
        '2026-10-24T12:00:00Z', 3, [
            ('2026-10-25T00:30:00Z', '2026-10-25T02:30:00+02:00', 'overlap'),
            ('2026-10-25T01:30:00Z', '2026-10-25T02:30:00+01:00', 'overlap'),
            ('2026-10-26T01:30:00Z', '2026-10-26T02:30:00+01:00', None)]),
    'cron in the New York spring gap': (
        {'schedule_hour': '2', 'schedule_minute': '15'}, 'America/New_York',
        '2026-03-07T12:00:00Z', 3, [
            ('2026-03-08T07:15:00Z', '2026-03-08T03:15:00-04:00', 'gap'),
            ('2026-03-09T06:15:00Z', '2026-03-09T02:15:00-04:00', None),
            ('2026-03-10T06:15:00Z', '2026-03-10T02:15:00-04:00', None)]),
    'cron twice in the New York overlap': (
        {'schedule_hour': '1', 'schedule_minute': '30'}, 'America/New_York',
        '2026-10-31T12:00:00Z', 3, [
            ('2026-11-01T05:30:00Z', '2026-11-01T01:30:00-04:00', 'overlap'),
            ('2026-11-01T06:30:00Z', '2026-11-01T01:30:00-05:00', 'overlap'),
            ('2026-11-02T06:30:00Z', '2026-11-02T01:30:00-05:00', None)]),
    'cron in the Sydney spring gap': (
        {'schedule_hour': '2', 'schedule_minute': '30'}, 'Australia/Sydney',
        '2026-10-02T00:00:00Z', 3, [
            ('2026-10-02T16:30:00Z', '2026-10-03T02:30:00+10:00', None),
            ('2026-10-03T16:30:00Z', '2026-10-04T03:30:00+11:00', 'gap'),
            ('2026-10-04T15:30:00Z', '2026-10-05T02:30:00+11:00', None)]),
    'cron twice in the Sydney overlap': (
        {'schedule_hour': '2', 'schedule_minute': '30'}, 'Australia/Sydney',
        '2026-04-04T00:00:00Z', 3, [
            ('2026-04-04T15:30:00Z', '2026-04-05T02:30:00+11:00', 'overlap'),
            ('2026-04-04T16:30:00Z', '2026-04-05T02:30:00+10:00', 'overlap'),
            ('2026-04-05T16:30:00Z', '2026-04-06T02:30:00+10:00', None)]),
    'cron weekdays with start and end dates (UTC without offset)': (
        {'schedule_day_of_week': 'mon-fri', 'schedule_hour': '6',
         'schedule_minute': '0',
         'schedule_start_date': '2026-03-26T00:00:00',
         'schedule_end_date': '2026-03-31T00:00:00'}, 'Europe/Berlin',
        '2026-03-01T00:00:00Z', 10, [
            ('2026-03-26T05:00:00Z', '2026-03-26T06:00:00+01:00', None),
            ('2026-03-27T05:00:00Z', '2026-03-27T06:00:00+01:00', None),
            ('2026-03-30T04:00:00Z', '2026-03-30T06:00:00+02:00', None)]),
    'daily interval across the Berlin gap': (
        {'schedule_interval': '1 days',
         'schedule_start_date': '2026-03-27T01:00:00Z'}, 'Europe/Berlin',
        '2026-03-26T00:00:00Z', 4, [
            ('2026-03-27T01:00:00Z', '2026-03-27T02:00:00+01:00', None),
            ('2026-03-28T01:00:00Z', '2026-03-28T02:00:00+01:00', None),
            ('2026-03-29T01:00:00Z', '2026-03-29T03:00:00+02:00', None),
            ('2026-03-30T01:00:00Z', '2026-03-30T03:00:00+02:00', None)]),
    'hourly interval through the Berlin overlap': (
        {'schedule_interval': '1 hours',
         'schedule_start_date': '2026-10-24T23:00:00Z'}, 'Europe/Berlin',
        '2026-10-24T21:00:00Z', 4, [
            ('2026-10-24T23:00:00Z', '2026-10-25T01:00:00+02:00', None),
            ('2026-10-25T00:00:00Z', '2026-10-25T02:00:00+02:00', 'overlap'),
            ('2026-10-25T01:00:00Z', '2026-10-25T02:00:00+01:00', 'overlap'),
            ('2026-10-25T02:00:00Z', '2026-10-25T03:00:00+01:00', None)]),
    'interval with an end date': (
        {'schedule_interval': '12 hours',
         'schedule_start_date': '2026-04-04T00:00:00+11:00',
         'schedule_end_date': '2026-04-05T12:00:00+10:00'},
        'Australia/Sydney', '2026-03-01T00:00:00Z', 10, [
            ('2026-04-03T13:00:00Z', '2026-04-04T00:00:00+11:00', None),
            ('2026-04-04T01:00:00Z', '2026-04-04T12:00:00+11:00', None),
            ('2026-04-04T13:00:00Z', '2026-04-05T00:00:00+11:00', None),
            ('2026-04-05T01:00:00Z', '2026-04-05T11:00:00+10:00', None)]),
    'an end date before the start is ignored': (
        {'schedule_interval': '1 weeks',
         'schedule_start_date': '2026-03-02T00:00:00Z',
         'schedule_end_date': '2026-03-01T00:00:00Z'}, 'UTC',
        '2026-03-01T00:00:00Z', 2, [
            ('2026-03-02T00:00:00Z', '2026-03-02T00:00:00+00:00', None),
            ('2026-03-09T00:00:00Z', '2026-03-09T00:00:00+00:00', None)]),
    'a start date already past when armed counts from arming': (
        {'schedule_interval': '30 minutes',
         'schedule_start_date': '2025-06-01T00:00:00Z'}, 'UTC',
        '2026-01-01T00:10:00Z', 2, [
            ('2026-01-01T00:30:02Z', '2026-01-01T00:30:02+00:00', None),
            ('2026-01-01T01:00:02Z', '2026-01-01T01:00:02+00:00', None)]),
    'an interval without start date: one interval after arming': (
        {'schedule_interval': '2 hours'}, 'America/New_York',
        '2026-01-01T03:00:00Z', 2, [
            ('2026-01-01T04:00:00Z', '2025-12-31T23:00:00-05:00', None),
            ('2026-01-01T06:00:00Z', '2026-01-01T01:00:00-05:00', None)]),
    'continuous is every second': (
        {'schedule_interval': 'continuous'}, 'UTC',
        '2026-01-01T00:00:10.500000Z', 3, [
            ('2026-01-01T00:00:11Z', '2026-01-01T00:00:11+00:00', None),
            ('2026-01-01T00:00:12Z', '2026-01-01T00:00:12+00:00', None),
            ('2026-01-01T00:00:13Z', '2026-01-01T00:00:13+00:00', None)]),
    'a local date in the Berlin overlap runs at the first': (
        {'schedule_date': '2026-10-25T02:30:00'}, 'Europe/Berlin',
        '2026-10-01T00:00:00Z', 3, [
            ('2026-10-25T00:30:00Z', '2026-10-25T02:30:00+02:00',
             'overlap')]),
    'a local date in the Sydney gap': (
        {'schedule_date': '2026-10-04T02:30:00'}, 'Australia/Sydney',
        '2026-10-01T00:00:00Z', 3, [
            ('2026-10-03T16:30:00Z', '2026-10-04T03:30:00+11:00', 'gap')]),
    'a date with an offset picks the second of an overlap': (
        {'schedule_date': '2026-10-25T02:30:00+01:00'}, 'Europe/Berlin',
        '2026-10-01T00:00:00Z', 3, [
            ('2026-10-25T01:30:00Z', '2026-10-25T02:30:00+01:00',
             'overlap')]),
    'a date with an offset outside any change': (
        {'schedule_date': '2026-06-01T12:00:00Z'}, 'Europe/Berlin',
        '2026-05-01T00:00:00Z', 3, [
            ('2026-06-01T12:00:00Z', '2026-06-01T14:00:00+02:00', None)]),
    'a date wins over an interval and cron fields': (
        {'schedule_date': '2026-05-01T10:00:00Z',
         'schedule_interval': '1 hours', 'schedule_hour': '3'}, 'UTC',
        '2026-04-01T00:00:00Z', 3, [
            ('2026-05-01T10:00:00Z', '2026-05-01T10:00:00+00:00', None)]),
    'an interval wins over cron fields': (
        {'schedule_interval': '1 days', 'schedule_hour': '3',
         'schedule_start_date': '2026-05-01T10:00:00Z'}, 'UTC',
        '2026-04-01T00:00:00Z', 1, [
            ('2026-05-01T10:00:00Z', '2026-05-01T10:00:00+00:00', None)]),
    'a past date runs no more': (
        {'schedule_date': '2026-02-01T10:00:00Z'}, 'UTC',
        '2026-04-01T00:00:00Z', 3, []),
    'no schedule: once, 2 s after arming': (
        {'status': 'scheduled'}, 'UTC', '2026-01-01T00:00:01Z', 3, [
            ('2026-01-01T00:00:02Z', '2026-01-01T00:00:02+00:00', None)]),
    'no schedule, later: nothing more': (
        {}, 'UTC', '2026-01-01T00:01:00Z', 3, []),
}


@pytest.mark.parametrize('name', sorted(CASES))
def test_run_times(name):
    job_schedule, zone, now, count, expected = CASES[name]
    assert runs(job_schedule, zone, now, count) == expected


def test_job_schedule_answer():
    doc = {'job_id': 'j1', 'job_schedule': {
        'schedule_hour': '2', 'schedule_minute': '30',
        'schedule_timezone': 'Europe/Berlin',
        'time_created': int(at('2026-03-01T00:00:00Z').timestamp())}}
    answer = schedule.job_schedule(doc, schedule.time_zone('UTC'),
                                   at('2026-03-28T12:00:00Z').timestamp(),
                                   count=2)
    assert answer == {
        'job_id': 'j1', 'timezone': 'Europe/Berlin',
        'timezone_source': 'job',
        'trigger': {'kind': 'cron',
                    'fields': {'hour': '2', 'minute': '30'}},
        'next_run': '2026-03-29T01:30:00Z',
        'runs': [{'utc': '2026-03-29T01:30:00Z',
                  'local': '2026-03-29T03:30:00+02:00',
                  'utc_offset': '+02:00', 'dst': 'gap'},
                 {'utc': '2026-03-30T00:30:00Z',
                  'local': '2026-03-30T02:30:00+02:00',
                  'utc_offset': '+02:00', 'dst': None}]}
    doc['job_schedule'].pop('schedule_timezone')
    answer = schedule.job_schedule(doc, schedule.time_zone('Asia/Tokyo'),
                                   at('2026-03-28T12:00:00Z').timestamp(),
                                   count=1)
    assert answer['timezone'] == 'Asia/Tokyo'
    assert answer['timezone_source'] == 'default'
    assert answer['runs'][0]['local'] == '2026-03-29T02:30:00+09:00'


@pytest.mark.parametrize('name', ['Mars/Base', 'Europe/Berlln', '', ' UTC',
                                  '/etc/localtime', '../zoneinfo/UTC',
                                  'x' * 65, None, 3])
def test_unknown_zones(name):
    with pytest.raises(InvalidInput, match='schedule_timezone'):
        schedule.time_zone(name)
    with pytest.raises(InvalidInput):
        schedule.check_time_zone({'schedule_timezone': name})


def test_known_zones():
    for name in ('UTC', 'Europe/Berlin', 'America/New_York',
                 'Australia/Sydney', 'America/Argentina/Buenos_Aires'):
        assert schedule.time_zone(name).key == name
    schedule.check_time_zone({})
    schedule.check_time_zone(None)


@pytest.mark.parametrize('count', [0, 101, -1, True, 1.5, '3', None])
def test_bad_counts(count):
    with pytest.raises(InvalidInput, match='count'):
        schedule.check_count(count)


@pytest.mark.parametrize('job_schedule', [
    {'schedule_hour': '25'},
    {'schedule_day_of_week': 'someday'},
    {'schedule_hour': ''},
    {'schedule_date': 'tomorrow'},
    {'schedule_interval': '1 fortnights'},
])
def test_schedules_the_scheduler_cannot_read(job_schedule):
    with pytest.raises(Unprocessable, match='freezer-scheduler cannot'):
        runs(job_schedule, 'UTC', '2026-01-01T00:00:00Z')


def test_a_stored_zone_this_host_does_not_know():
    doc = {'job_id': 'j1', 'job_schedule': {'schedule_timezone': 'Old/Zone',
                                            'schedule_interval': '1 days'}}
    with pytest.raises(Unprocessable, match='Old/Zone'):
        schedule.job_schedule(doc, schedule.time_zone('UTC'), 0)


def test_offsets_of_half_and_quarter_hours():
    assert runs({'schedule_hour': '9', 'schedule_minute': '0'},
                'America/St_Johns', '2026-06-01T00:00:00Z', 1) == [
        ('2026-06-01T11:30:00Z', '2026-06-01T09:00:00-02:30', None)]
    found = schedule.next_runs(
        {'schedule_hour': '9', 'schedule_minute': '0'},
        schedule.time_zone('Asia/Kathmandu'), at(ARMED),
        at('2026-06-01T00:00:00Z'), 1)
    assert found[0].as_dict()['utc_offset'] == '+05:45'
    assert found[0].as_dict()['utc'] == '2026-06-01T03:15:00Z'
