"""The backup health rules of core/health.py and core/presence.py, without
a server or a store."""

from freezer_api.core import health
from freezer_api.core import presence
from freezer_api.core import runs
from freezer_api.core.coverage import HealthSweeper

T0 = 1_700_000_000
DAY = 86400


def job(**extra):
    doc = {'job_id': 'j1', 'client_id': 'c1', 'project_id': 'p',
           'user_id': 'u', 'description': 'd',
           'job_schedule': {'schedule_interval': '10 minutes',
                            'time_created': T0}}
    doc.update(extra)
    return doc


def running(start):
    return job(job_schedule={'status': 'running', 'time_started': start,
                             'time_ended': -1, 'result': ''})


def test_ids_are_deterministic_and_distinct():
    assert health.run_id('j1', T0) == health.run_id('j1', T0)
    assert health.run_id('j1', T0) != health.run_id('j1', T0 + 1)
    assert health.run_id('j1', T0) != health.missed_id('j1', T0)
    assert len(health.run_id('x' * 255, T0)) == 32


def test_newest_first_order():
    assert health.created_at(T0 + 1) < health.created_at(T0)
    assert health.created_at(T0) > 0


def test_reports():
    assert health.reported_start(running(T0)) == T0
    assert health.reported_start(job()) is None
    assert health.reported_start(running(-1)) is None
    ended = job(job_schedule={'status': 'scheduled', 'result': 'fail',
                              'time_started': T0, 'time_ended': T0 + 5})
    assert health.reported_end(ended) == (T0, T0 + 5, 'fail')
    # a start event clears the result: not an end
    cleared = job(job_schedule={'status': '', 'result': '',
                                'time_started': T0, 'time_ended': T0 + 5})
    assert health.reported_end(cleared) is None
    # an end before its start is no end
    odd = job(job_schedule={'status': 'completed', 'result': 'success',
                            'time_started': T0, 'time_ended': T0 - 1})
    assert health.reported_end(odd) is None


def test_lease_stale_and_lost():
    assert health.lease(job(run_lease=60), 3600) == 60
    assert health.lease(job(run_lease=True), 3600) == 3600
    assert health.lease(None, 3600) == 3600
    run = health.new_run(running(T0), T0, T0)
    assert not health.is_overdue(run, 60, T0 + 60)
    assert health.is_overdue(run, 60, T0 + 61)
    lost = health.lost_run(run, 60)
    assert (lost['status'], lost['result'], lost['end']) == (
        'lost', 'lost', T0 + 60)
    assert health.is_stale(running(T0), lost, 60, T0 + 61)
    assert not health.is_stale(job(), lost, 60, T0 + 61)
    back = health.ended_run(lost, T0 + 100, 'success', T0 + 100)
    assert back['status'] == 'completed' and back['reported_after_lost']


def test_interval_grace_and_rpo():
    trig, description = health.trigger_of(job(), health.run_times.UTC)
    assert health.interval_of(trig, description, T0) == 600
    assert health.grace(600, 300, 10) == 300
    assert health.grace(7 * DAY, 300, 10) == 60480
    assert health.grace(None, 300, 10) == 300
    assert health.rpo(job(), 600) == (1200, 'default')
    assert health.rpo(job(rpo=99), 600) == (99, 'job')
    assert health.rpo(job(), None) == (None, 'none')
    cron = job(job_schedule={'schedule_hour': '3', 'schedule_minute': '0',
                             'time_created': T0})
    trig, description = health.trigger_of(cron, health.run_times.UTC)
    assert health.interval_of(trig, description, T0) == DAY
    assert health.breached(100, T0, T0, T0 + 101)
    assert not health.breached(100, T0, T0, T0 + 100)
    assert health.breached(100, None, T0, T0 + 101)
    assert not health.breached(None, None, T0, T0 + 10 ** 6)


def test_expected_times():
    trig, _ = health.trigger_of(job(), health.run_times.UTC)
    assert health.expected_times(trig, T0, T0 + 1800) == [
        T0 + 600, T0 + 1200, T0 + 1800]
    # the newest ones when there are more
    assert health.expected_times(trig, T0, T0 + 6000, limit=2) == [
        T0 + 5400, T0 + 6000]
    assert health.expected_times(None, T0, T0 + 600) == []


def test_missed_reasons():
    doc = job()
    expected = [T0 + 600, T0 + 1200, T0 + 1800, T0 + 2400]
    runs = [
        # answers T0+600 (started a little early: the scheduler armed
        # the job before the server's reckoning)
        {'status': 'completed', 'start': T0 + 590, 'end': T0 + 700},
        # still going at T0+1800
        {'status': 'running', 'start': T0 + 1400, 'end': -1},
    ]
    polled = {'last_seen': T0 + 2000, 'gaps': [[T0 + 1000, T0 + 1400]]}
    missed = health.missed_runs(doc, expected, runs, 60, 600, polled, 300)
    # offline first: the run left running is no reason of its own
    assert missed == [(T0 + 1200, 'client_offline'),
                      (T0 + 1800, 'overlap'),
                      (T0 + 2400, 'client_offline')]
    done = [dict(runs[1], status='completed', end=T0 + 1700)]
    missed = health.missed_runs(doc, expected[2:], done, 60, 600, polled,
                                300)
    assert missed == [(T0 + 1800, 'not_started'),
                      (T0 + 2400, 'client_offline')]
    # a client never seen is offline
    assert health.missed_runs(doc, [T0 + 600], [], 60, 600, None, 300) == [
        (T0 + 600, 'client_offline')]


def test_watches_schedule():
    assert health.watches_schedule(job())
    assert not health.watches_schedule(job(session_id='s1'))
    assert not health.watches_schedule(job(job_schedule={'event': 'stop'}))


def test_presence_gaps():
    doc = presence.seen(None, T0, T0 + 10, [], 300)
    assert doc == {'last_seen': T0 + 10, 'first_seen': T0, 'gaps': []}
    # a silence longer than offline_after between two writes
    later = presence.seen(doc, T0 + 1000, T0 + 1010, [], 300)
    assert later['gaps'] == [[T0 + 10, T0 + 1000]]
    # a silence this process saw between two polls it coalesced
    again = presence.seen(later, T0 + 1020, T0 + 2000,
                          [[T0 + 1100, T0 + 1900]], 300)
    assert again['gaps'] == [[T0 + 10, T0 + 1000], [T0 + 1100, T0 + 1900]]
    # the same silence written by two processes is kept once
    assert presence.seen(again, T0 + 2010, T0 + 2020,
                         [[T0 + 1100, T0 + 1900]], 300)['gaps'] == (
        again['gaps'])
    # older polls change nothing
    assert presence.seen(again, T0, T0 + 5, [], 300) is again
    # gaps older than a week go
    week = presence.seen(again, T0 + 8 * DAY, T0 + 8 * DAY, [], 300)
    assert week['gaps'] == [[T0 + 2000, T0 + 8 * DAY]]


def test_polled_client():
    assert presence.polled_client({'match': [{'client_id': 'c1'}]}) == 'c1'
    assert presence.polled_client({'match': [{'description': 'x'}]}) is None
    assert presence.polled_client(None) is None
    assert presence.polled_client({'match': {'client_id': 'c2'}}) == 'c2'
    assert presence.polled_client({'match': [{'client_id': 5}]}) is None


# -- the per-job summary ------------------------------------------------------

def run_doc(start, status='completed', result='success', end=None,
            **extra):
    doc = health.new_run(job(), start, start)
    if status != health.RUNNING:
        doc = health.ended_run(doc, end or start + 60, result, start + 60)
    doc.update(status=status, at=start, **extra)
    return doc


def test_a_summary_keeps_recent_runs_compactly():
    runs = [run_doc(T0 + 600, result='fail'), run_doc(T0),
            health.missed_run(job(), T0 - 600, 'client_offline')]
    made = health.summary(job(), runs, runs[1], 600, [], T0 + 700, 1800,
                          T0 + 650)
    # one string: a search-index row, not one per run
    assert isinstance(made['recent'], str)
    assert health.recent_entries(made, T0 + 650) == [
        (T0 + 600, 'completed', 'fail', ''),
        (T0, 'completed', 'success', ''),
        (T0 - 600, 'missed', 'missed', 'client_offline')]
    assert made['last_success']['end'] == T0 + 60
    assert made['settle_due'] == T0 + 700
    # past RECENT_DAYS, a run no longer counts
    assert len(health.recent_entries(made, T0 + 7 * DAY + 1)) == 1


def test_a_note_replaces_the_run_and_moves_the_due_time():
    made = health.summary(job(), [], None, 600, [], T0 + 700, 1800, T0)
    start = run_doc(T0 + 10, status='running', result='')
    noted = health.noted(made, start, 1800)
    assert health.recent_entries(noted, T0 + 20) == [
        (T0 + 10, 'running', '', '')]
    assert noted['current']['status'] == 'running'
    assert noted['settle_due'] == T0 + 700   # the earlier of the two
    short = health.noted(made, start, 100)
    assert short['settle_due'] == health.overdue_at(start, 100)
    ended = health.noted(noted, run_doc(T0 + 10, end=T0 + 40), 1800)
    assert health.recent_entries(ended, T0 + 50) == [
        (T0 + 10, 'completed', 'success', '')]
    assert ended['last_success']['end'] == T0 + 40
    assert ended['current']['status'] == 'completed'
    # an older good run does not replace a newer one
    older = health.noted(ended, run_doc(T0 - 900, end=T0 - 800), 1800)
    assert older['last_success']['end'] == T0 + 40
    assert older['current']['start'] == T0 + 10
    # a missed run at the same time as a run is another entry
    both = health.noted(ended, health.missed_run(job(), T0 + 10,
                                                 'overlap'), 1800)
    assert len(health.recent_entries(both, T0 + 50)) == 2


def test_when_a_summary_is_due():
    made = health.summary(job(), [], None, 600, [], T0 + 700, 1800, T0)
    assert health.is_due(None, job(), T0)
    assert not health.is_due(made, job(), T0 + 699)
    assert health.is_due(made, job(), T0 + 700)
    # the scheduler's run state does not matter; the schedule does
    assert not health.is_due(made, job(job_schedule={
        'schedule_interval': '10 minutes', 'time_created': T0,
        'status': 'running', 'time_started': T0, 'time_ended': -1,
        'result': '', 'current_pid': 42}), T0)
    assert health.is_due(made, job(job_schedule={
        'schedule_interval': '20 minutes', 'time_created': T0}), T0)
    assert health.is_due(made, job(run_lease=60), T0)
    assert health.is_due(health.empty_summary(job()), job(), T0)
    never = health.summary(job(), [], None, None, [], None, 1800, T0)
    assert never['settle_due'] == health.NEVER


def test_next_check_and_next_run():
    trig, _ = health.trigger_of(job(), health.run_times.UTC)
    # runs every 600 s from T0; at T0 + 650 with a grace of 60 s the run
    # of T0 + 600 may be missed from T0 + 661
    assert health.next_check(trig, T0 + 650, 60) == T0 + 661
    assert health.next_check(trig, T0 + 661, 60) == T0 + 1261
    upcoming = [['a', T0 + 600], ['b', T0 + 1200], ['c', T0 + 1800]]
    made = health.summary(job(), [], None, 600, upcoming, None, 1800, T0)
    assert health.next_run(made, T0) == 'a'
    assert health.next_run(made, T0 + 600) == 'b'
    assert health.next_run(made, T0 + 1800) is False   # recompute
    ending = health.summary(job(), [], None, 600, upcoming[:1], None, 1800,
                            T0)
    assert health.next_run(ending, T0 + 600) is None


def test_counting_recent_runs_with_and_without_parsing():
    runs = [run_doc(T0 + 600 * k, result='fail' if k % 3 else 'success')
            for k in range(30, 0, -1)]
    runs.append(health.missed_run(job(), T0, 'overlap'))
    made = health.summary(job(), runs, None, 600, [], None, 1800, T0)

    def by_meaning(counts):
        return {health.meaning(code): n for code, n in counts.items()}

    # all recent: counted on the string
    assert by_meaning(health.recent_counts(made, T0 + DAY)) == {
        ('completed', 'success', ''): 10, ('completed', 'fail', ''): 20,
        ('missed', 'missed', 'overlap'): 1}
    # the oldest ones past the window: parsed up to them
    later = T0 + 7 * DAY + 600 * 10 + 1
    assert by_meaning(health.recent_counts(made, later)) == {
        ('completed', 'success', ''): 7, ('completed', 'fail', ''): 13}
    assert health.recent_counts(health.empty_summary(job()), T0) == {}


# -- the sweep's quick pass: which jobs it looks at --------------------------

def test_a_scheduler_run_state_patch_never_reschedules():
    job = {'job_schedule': {'schedule_interval': '1 hours',
                            'status': 'scheduled'}}
    running = {'job_schedule': {**job['job_schedule'], 'status': 'running'}}
    assert not health.patch_reschedules(
        {'job_schedule': {'status': 'running', 'time_started': 5}},
        job, running)
    # a stop holds the job: its expected runs change
    stopped = {'job_schedule': {**job['job_schedule'], 'event': 'stop'}}
    assert health.patch_reschedules({'job_schedule': {'event': 'stop'}},
                                    job, stopped)
    for patch in ({'job_schedule': {'schedule_interval': '2 hours'}},
                  {'client_id': 'other'}, {'run_lease': 60},
                  {'job_schedule': {'status': 'running'}, 'rpo': 5}):
        assert health.patch_reschedules(patch, job, job)


class _Coverage:
    """What HealthSweeper calls, noting which pass ran."""

    def __init__(self):
        self.passes = []
        self.runs = self

    def settle_due(self, scope):
        self.passes.append('full')
        return 0

    def settle_changed(self, scope, changed):
        self.passes.append(sorted(changed))
        return 0

    def purge_expired(self):
        return 0


def test_the_quick_pass_takes_the_changed_jobs_once():
    ledger = runs.RunLedger(lambda: 0, runs.HealthSettings())
    coverage = _Coverage()
    sweeper = HealthSweeper(coverage, 60, ledger)
    ledger.job_changed('p', 'a')
    ledger.job_changed('p', 'b')
    ledger.job_changed('p', 'a')
    sweeper.sweep(full=False)
    sweeper.sweep(full=False)
    assert coverage.passes == [[('p', 'a'), ('p', 'b')], []]


def test_too_many_changes_make_the_next_pass_full(monkeypatch):
    monkeypatch.setattr(runs, 'MAX_CHANGED', 2)
    ledger = runs.RunLedger(lambda: 0, runs.HealthSettings())
    coverage = _Coverage()
    sweeper = HealthSweeper(coverage, 60, ledger)
    for job_id in 'abc':
        ledger.job_changed('p', job_id)
    sweeper.sweep(full=False)
    sweeper.sweep(full=False)
    assert coverage.passes == ['full', []]


def test_without_a_ledger_every_pass_is_full():
    coverage = _Coverage()
    HealthSweeper(coverage, 60).sweep(full=False)
    assert coverage.passes == ['full']
