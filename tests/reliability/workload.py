"""Simulated schedulers and an operator, over real API processes.

Each ``Scheduler`` thread acts as freezer-scheduler on one host: it owns
one client and one job, polls its jobs, PATCHes the job's state, starts
and ends the runs of the session its job belongs to, posts backups, moves
its job between sessions and registers its client again. An ``Operator``
thread sends job events. Every request and its answer is recorded, so
that ``check`` can tell afterwards what must be in the store:

* with ``faults=False`` (soak): every write was acknowledged, so the store
  must hold exactly their effect: the last PATCH of each job, one version
  per acknowledged write, each session's job entries as their last
  acknowledged start/end left them, one tag per run, no duplicate client;
* with ``faults=True`` (crash, outage): a write without an answer may or
  may not have been applied, but every acknowledged one must be there and
  no multi-document change may be half applied.

Requests are spread round-robin over the API processes.
"""

import collections
import itertools
import json
import random
import threading
import time

import requests

PROJECT = 'reliability'
USER = 'sched'
HEADERS = {'X-User-Id': USER, 'X-Project-Id': PROJECT,
           'X-Roles': 'member,reader', 'Content-Type': 'application/json'}
SESSIONS = 4
HOLD_OFF = 1


class Transport:
    """Round-robin over the API processes; counts every answer."""

    def __init__(self, urls, timeout=30):
        self.urls = list(urls)
        self.timeout = timeout   # seconds a request may take
        self._cycle = itertools.cycle(range(len(self.urls)))
        self._lock = threading.Lock()
        self.statuses = collections.Counter()
        self.server_errors = []
        self.unanswered = 0
        # answers whose JSON body was cut off (a process killed mid-answer)
        self.cut = 0
        self.slowest = 0.0   # seconds, of an answered request
        self.unanswered_calls = []   # (method, path, seconds waited)

    def call(self, method, path, body=None, http=None, timeout=None,
             version='v2'):
        with self._lock:
            base = self.urls[next(self._cycle)]
        prefix = f'/v2/{PROJECT}' if version == 'v2' else '/v1'
        data = None if body is None else json.dumps(body)
        sent = time.monotonic()
        try:
            resp = (http or requests).request(
                method, base + prefix + path, data=data, headers=HEADERS,
                timeout=timeout or self.timeout)
        except requests.RequestException:
            with self._lock:
                self.unanswered += 1
                self.unanswered_calls.append(
                    (method, path, round(time.monotonic() - sent, 1)))
            return None
        # NOTE: every 200, 201 and 202 of this API carries a JSON body.
        if resp.status_code in (200, 201, 202) or resp.content:
            try:
                resp.json()
            except ValueError:
                # NOTE: the answer was cut: for the caller it is no answer
                # (the write may or may not have been applied). Counted,
                # and zero where no process is killed (test_soak).
                with self._lock:
                    self.unanswered += 1
                    self.cut += 1
                return None
        with self._lock:
            self.slowest = max(self.slowest, time.monotonic() - sent)
            self.statuses[resp.status_code] += 1
            if resp.status_code >= 500:
                self.server_errors.append(
                    (method, path, resp.status_code, resp.text[:200]))
        return resp


def setup(transport, schedulers):
    """Clients, one job each, sessions; returns the workers' plan."""
    sessions = []
    for n in range(SESSIONS):
        resp = transport.call('POST', '/sessions/', {
            'description': f'session {n}', 'hold_off': HOLD_OFF,
            'schedule': {'schedule_interval': '1 days'}})
        assert resp is not None and resp.status_code == 201, resp
        sessions.append(resp.json()['session_id'])
    plan = []
    for n in range(schedulers):
        client_id = f'{PROJECT}_host{n}'
        resp = transport.call('POST', '/clients/', {
            'client_id': client_id, 'hostname': f'host{n}'})
        assert resp is not None and resp.status_code == 201, resp
        resp = transport.call('POST', '/jobs/', {
            'client_id': client_id, 'description': 'start',
            'job_schedule': {'schedule_interval': '1 days'},
            'job_actions': [{'freezer_action': {
                'action': 'backup', 'mode': 'fs', 'backup_name': 'b',
                'path_to_backup': '/etc', 'container': 'c'}}]})
        assert resp is not None and resp.status_code == 201, resp
        job_id = resp.json()['job_id']
        session_id = sessions[n % SESSIONS]
        resp = transport.call('PUT', f'/sessions/{session_id}/jobs/{job_id}')
        assert resp is not None and resp.status_code == 204, resp
        plan.append((n, client_id, job_id, session_id))
    return sessions, plan


class Log:
    """What the workers sent and what was acknowledged."""

    def __init__(self):
        self.lock = threading.Lock()
        self.patches = collections.defaultdict(list)   # job -> [(n, acked)]
        self.job_writes = collections.Counter()        # job -> acked writes
        self.backups = []                              # acked backup ids
        self.entries = {}              # (session, job) -> last acked write
        self.run_tags = collections.defaultdict(set)   # session -> tags
        self.member = {}               # job -> session (last acked)
        self.opened = {}               # (session, tag) -> first seen
        self.left = collections.defaultdict(list)   # session -> times
        self.operations = collections.Counter()
        self.client_conflicts = 0

    def acknowledged(self, session, job, entry):
        """The last acknowledged write of ``job`` in ``session`` (None: it
        left). Under lock."""
        if entry is None:
            self.entries.pop((session, job), None)
        else:
            self.entries[(session, job)] = entry


class Scheduler(threading.Thread):
    def __init__(self, transport, log, stop, plan_entry, sessions, seed,
                 pace=0.05):
        super().__init__(daemon=True)
        self.transport, self.log, self.stop = transport, log, stop
        self.n, self.client_id, self.job_id, self.session_id = plan_entry
        self.sessions = sessions
        self.random = random.Random(seed)
        self.version = 'v1' if self.n % 3 == 0 else 'v2'
        self.tag = 0
        self.counter = 0
        self.pace = pace
        self.http = requests.Session()
        self.error = None
        with log.lock:
            log.member[self.job_id] = self.session_id
            log.acknowledged(self.session_id, self.job_id,
                             ('added', None, None))

    def call(self, method, path, body=None):
        self.log.operations[f'{method} {path.split("/")[1]}'] += 1
        return self.transport.call(method, path, body, http=self.http,
                                   version=self.version)

    def run(self):
        try:
            while not self.stop.is_set():
                self.step()
                time.sleep(self.random.uniform(0, self.pace))
        except BaseException as ex:  # reported by check()
            self.error = ex
        finally:
            self.http.close()

    def step(self):
        log = self.log
        # poll, as the scheduler does
        resp = self.call('GET', '/jobs/?limit=10', {
            'match': [{'client_id': self.client_id}],
            'match_not': [{'status': 'completed'}]})
        if resp is not None and resp.status_code == 200:
            ids = [job['job_id'] for job in resp.json()['jobs']]
            assert self.job_id in ids, ('job lost from its poll', ids)
        # report state
        self.counter += 1
        n = self.counter
        with log.lock:
            log.patches[self.job_id].append([n, False])
        resp = self.call('PATCH', f'/jobs/{self.job_id}', {
            'job_schedule': {'current_pid': n, 'status': 'running'},
            'description': f'{self.n}-{n}'})
        if resp is not None and resp.status_code == 200:
            with log.lock:
                log.patches[self.job_id][-1][1] = True
                log.job_writes[self.job_id] += 1
        # a session run
        self.session_run()
        roll = self.random.random()
        if roll < 0.15:
            resp = self.call('POST', '/backups/', {
                'container': 'c', 'hostname': f'host{self.n}',
                'backup_name': 'b', 'job_id': self.job_id, 'n': n})
            if resp is not None and resp.status_code == 201:
                with log.lock:
                    log.backups.append(resp.json()['backup_id'])
        elif roll < 0.22:
            self.move()
        elif roll < 0.25:
            resp = self.call('POST', '/clients/', {
                'client_id': self.client_id, 'hostname': 'again'})
            if resp is not None:
                assert resp.status_code in (409, 503), resp.text
                if resp.status_code == 409:
                    with log.lock:
                        log.client_conflicts += 1

    def session_run(self):
        sid = self.session_id
        if sid is None:
            return
        resp = self.call('POST', f'/sessions/{sid}/action', {
            'start': {'job_id': self.job_id, 'current_tag': self.tag}})
        if resp is None or resp.status_code != 202:
            if resp is not None and resp.status_code == 400:
                # tag too high after a move, or not a member: resync
                self.tag = 0
            return
        answer = resp.json()
        if answer['result'] != 'success':
            if answer['result'] == 'out-of-sync':
                self.tag = answer['session_tag']
            return
        tag = answer['session_tag']
        with self.log.lock:
            self.log.acknowledged(sid, self.job_id, ('start', tag, None))
            self.log.run_tags[sid].add(tag)
            self.log.opened.setdefault((sid, tag), time.monotonic())
        self.tag = tag
        time.sleep(self.random.uniform(0, 0.05))
        result = 'fail' if self.random.random() < 0.1 else 'success'
        resp = self.call('POST', f'/sessions/{sid}/action', {
            'end': {'job_id': self.job_id, 'current_tag': tag,
                    'result': result}})
        if resp is not None and resp.status_code == 202 and (
                resp.json()['result'] == 'success'):
            with self.log.lock:
                self.log.acknowledged(sid, self.job_id, ('end', tag, result))

    def move(self):
        """Leave the session and join another (multi-document writes)."""
        log = self.log
        old = self.session_id
        new = self.random.choice(self.sessions)
        if old is not None and new != old:
            with log.lock:
                log.left[old].append(time.monotonic())
            resp = self.call('DELETE', f'/sessions/{old}/jobs/{self.job_id}')
            if resp is None or resp.status_code != 204:
                return
            with log.lock:
                log.job_writes[self.job_id] += 1
                log.acknowledged(old, self.job_id, None)
                log.member[self.job_id] = None
            self.session_id = None
        if new != self.session_id:
            resp = self.call('PUT', f'/sessions/{new}/jobs/{self.job_id}')
            if resp is None or resp.status_code != 204:
                return
            with log.lock:
                log.job_writes[self.job_id] += 1
                log.acknowledged(new, self.job_id, ('added', None, None))
                log.member[self.job_id] = new
            self.session_id = new
            self.tag = 0


class Operator(threading.Thread):
    """Sends job events, as a person using the CLI would."""

    def __init__(self, transport, log, stop, job_ids, seed):
        super().__init__(daemon=True)
        self.transport, self.log, self.stop = transport, log, stop
        self.job_ids = job_ids
        self.random = random.Random(seed)
        self.error = None

    def run(self):
        try:
            while not self.stop.is_set():
                job_id = self.random.choice(self.job_ids)
                event = self.random.choice(['stop', 'start', 'abort'])
                self.log.operations['POST event'] += 1
                resp = self.transport.call('POST', f'/jobs/{job_id}/event',
                                           {event: None})
                if resp is not None and resp.status_code == 202 and (
                        resp.json()['result'] == 'success'):
                    with self.log.lock:
                        self.log.job_writes[job_id] += 1
                time.sleep(self.random.uniform(0, 0.1))
        except BaseException as ex:
            self.error = ex


def run(transport, sessions, plan, seconds, operators=2, seed=0,
        during=None, longer=None, limit=300):
    """Run the workers for ``seconds``; ``during(elapsed)`` is called
    about every 0.2 s from this thread (to inject faults). While
    ``longer()`` is true they run on, up to ``limit`` seconds in all."""
    log = Log()
    stop = threading.Event()
    workers = [Scheduler(transport, log, stop, entry, sessions,
                         seed * 1000 + entry[0]) for entry in plan]
    workers += [Operator(transport, log, stop, [p[2] for p in plan],
                         seed * 1000 + 900 + n) for n in range(operators)]
    started = time.monotonic()
    for worker in workers:
        worker.start()
    try:
        while True:
            elapsed = time.monotonic() - started
            if elapsed >= limit or elapsed >= seconds and (
                    longer is None or not longer()):
                break
            time.sleep(0.2)
            if during is not None:
                during(time.monotonic() - started)
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=120)
    for worker in workers:
        assert not worker.is_alive(), 'a worker did not stop'
        if worker.error is not None:
            raise worker.error
    return log


def _get(transport, path):
    for _ in range(50):
        resp = transport.call('GET', path)
        if resp is not None and resp.status_code == 200:
            return resp.json()
        time.sleep(0.2)
    raise AssertionError(f'GET {path}: {resp and resp.text}')


def _list(transport, kind):
    found, offset = [], 0
    while True:
        page = _get(transport, f'/{kind}/?limit=1000&offset={offset}')[kind]
        found += page
        if len(page) < 1000:
            return found
        offset += len(page)


def check(transport, log, sessions, plan, versions_before, faults=False):
    """Assert the invariants; returns figures of what was checked."""
    checked = collections.Counter()
    # every acknowledged backup is there
    stored = {b['backup_id'] for b in _list(transport, 'backups')}
    missing = set(log.backups) - stored
    assert not missing, f'acknowledged backups lost: {sorted(missing)[:5]}'
    checked['backups'] = len(log.backups)
    if not faults:
        assert len(stored) == len(log.backups)
    # no duplicated client, none lost
    clients = [c['client']['client_id'] for c in _list(transport, 'clients')]
    assert len(clients) == len(set(clients)), 'duplicated client'
    assert set(clients) == {p[1] for p in plan}
    jobs = {j['job_id']: j for j in _list(transport, 'jobs')}
    docs = {sid: _get(transport, f'/sessions/{sid}') for sid in sessions}
    for _, _, job_id, _ in plan:
        job = jobs[job_id]
        job_full = _get(transport, f'/jobs/{job_id}')
        sent = log.patches[job_id]
        acked = [i for i, (_, ok) in enumerate(sent) if ok]
        pid = job['job_schedule'].get('current_pid')
        if faults:
            # the last acknowledged PATCH, or one sent after it
            first = acked[-1] if acked else 0
            allowed = {n for n, _ in sent[first:]}
            if acked:
                assert pid in allowed, (job_id, pid, sorted(allowed)[:5])
        else:
            assert acked and acked[-1] == len(sent) - 1
            assert pid == sent[-1][0], ('lost PATCH', job_id, pid)
            assert job['description'].endswith(f'-{sent[-1][0]}')
            expected = versions_before[job_id] + log.job_writes[job_id]
            assert job_full['_version'] >= expected, (
                'lost write', job_id, job_full['_version'], expected)
            assert job_full['_version'] == expected, (
                'extra write', job_id, job_full['_version'], expected)
        checked['jobs'] += 1
        # membership is the same seen from both documents
        sid = job.get('session_id') or None
        if sid is not None:
            assert job_id in docs[sid]['jobs'], ('half-applied', job_id, sid)
        for other, doc in docs.items():
            if job_id in doc['jobs']:
                assert other == sid, ('half-applied', job_id, other, sid)
        if not faults:
            assert sid == log.member[job_id], (job_id, sid)
    for sid, doc in docs.items():
        tag = doc['session_tag']
        if not faults:
            # one bump per run: the tags handed out are exactly 1..tag
            # (a start answered otherwise than success opened nothing, on
            # every store: see doc/reliability.rst)
            assert log.run_tags[sid] == set(range(1, tag + 1)), (
                sid, tag, sorted(log.run_tags[sid]))
            for job_id, entry in doc['jobs'].items():
                last = log.entries.get((sid, job_id))
                assert last is not None, (sid, job_id)
                kind, last_tag, result = last
                if kind == 'added':
                    assert 'session_tag' not in entry or entry[
                        'session_tag'] != tag or tag == 0, (sid, entry)
                    continue
                assert entry.get('session_tag') == last_tag, (
                    'lost session write', sid, job_id, entry, last)
                if kind == 'start':
                    assert entry['status'] == 'running', (entry, last)
                else:
                    assert entry['status'] == 'completed', (entry, last)
                    assert entry['result'] == result, (entry, last)
        # the session result is the aggregate of its current run
        run = [e for e in doc['jobs'].values() if e.get('session_tag') == tag]
        failed = any(e.get('status') == 'completed' and e.get('result') in (
            'fail', 'aborted') for e in run)
        opened = log.opened.get((sid, tag), 0)
        # a failed job that left the session takes its entry along
        someone_left = any(t >= opened - 1 for t in log.left[sid])
        if doc['status'] == 'completed' and tag > 0:
            if not (faults or someone_left) or doc['result'] == 'success':
                assert doc['result'] == ('fail' if failed else 'success'), doc
            if doc['result'] == 'success':
                assert all(e.get('status') == 'completed' for e in run), doc
        elif tag > 0:
            assert not failed, ('a failed run not completed', doc)
        checked['sessions'] += 1
        checked['session runs'] += tag
    return checked


def versions(transport, plan):
    return {job_id: _get(transport, f'/jobs/{job_id}')['_version']
            for _, _, job_id, _ in plan}
