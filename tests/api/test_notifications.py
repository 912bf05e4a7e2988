"""Notifications on a real RabbitMQ (issue 16.2): the events of document
writes and health occurrences, consumed from the bus; with the bus down
the API keeps answering and nothing the store knows about is lost, even
when the process that wrote it is killed before the bus is back."""

import json
import multiprocessing
import time

import falcon.testing
import kombu
import pytest

from freezer_api import notifications
from freezer_api.api import app as app_module
from freezer_api.api import context
from freezer_api import policies
from freezer_api.core import notify
from freezer_api.storage.sqlalchemy.driver import SQLAlchemyDriver
from tests.api import helpers
from tests.conftest import make_conf

QUEUE = 'notifications.info'
SECRET = 'hunter2-in-the-backup'


def make_bus_conf(tmp_path, url):
    conf = make_conf(tmp_path)
    notifications.register_opts(conf)
    conf.set_override('driver', ['messagingv2'], group=notifications.GROUP)
    conf.set_override('transport_url', url, group=notifications.GROUP)
    # NOTE: as in production: durable exchange and queues survive a
    # broker restart, so what is sent once it is back is not dropped for
    # want of a queue, and what it held is not lost.
    from oslo_messaging import opts as om_opts
    conf.register_opts(dict(om_opts.list_opts())['oslo_messaging_rabbit'],
                       group='oslo_messaging_rabbit')
    conf.set_override('amqp_durable_queues', True,
                      group='oslo_messaging_rabbit')
    return conf


@pytest.fixture
def bus_conf(tmp_path, rabbitmq_server):
    return make_bus_conf(tmp_path, rabbitmq_server.url)


@pytest.fixture
def driver(bus_conf):
    driver = SQLAlchemyDriver(bus_conf)
    driver.upgrade_schema()
    yield driver
    driver.close()


@pytest.fixture
def amqp(rabbitmq_server):
    url = f'amqp://guest:guest@127.0.0.1:{rabbitmq_server.port}//'
    drain(url, timeout=0)  # what earlier tests left
    return url


def drain(url, want=0, timeout=30.0):
    """The notifications on the queue: at least ``want`` of them, waiting
    up to ``timeout`` seconds for them."""
    got = []
    deadline = time.monotonic() + timeout
    while True:
        message = None
        try:
            with kombu.Connection(url, connect_timeout=2) as conn:
                channel = conn.channel()
                while True:
                    message = channel.basic_get(QUEUE, no_ack=True)
                    if message is None:
                        break
                    body = json.loads(message.body)
                    got.append(json.loads(body['oslo.message']))
        except Exception:  # noqa: BLE001 - no queue yet, or bus down
            pass
        if len(got) >= want or time.monotonic() > deadline:
            return got
        time.sleep(0.2)


def make_notifications(bus_conf, driver, **kwargs):
    return notifications.Notifications(
        driver, notifications.oslo_sender(bus_conf), max_backoff=1.0,
        **kwargs)


def make_api(bus_conf, driver, enforcer, sender):
    app = app_module.create_app(bus_conf, driver, enforcer=enforcer,
                                notifications=sender)
    return helpers.Api(falcon.testing.TestClient(
        context.NoAuthMiddleware(app, bus_conf)), 'v2')


def position(driver, project):
    cursor = driver.get_cursor(notifications.CURSOR, project)
    return 0 if cursor is None else cursor.position


@pytest.fixture
def api(bus_conf, driver, policy_enforcer):
    sender = make_notifications(bus_conf, driver)
    app = app_module.create_app(bus_conf, driver, enforcer=policy_enforcer,
                                notifications=sender)
    client = falcon.testing.TestClient(
        context.NoAuthMiddleware(app, bus_conf))
    yield helpers.Api(client, 'v2'), sender
    sender.stop()


def test_document_events_are_published_without_secrets(api, amqp):
    v2, _ = api
    backup_id = helpers.make_backup(v2, storage={'password': SECRET})
    job_id = helpers.make_job(v2)
    assert v2.patch('jobs', job_id,
                    json={'description': 'renamed'}).status_code == 200
    assert v2.delete('jobs', job_id).status_code == 204
    got = drain(amqp, want=6)
    types = [m['event_type'] for m in got]
    # a job created with its actions creates them too
    assert types == ['backup.create.end', 'client.create.end',
                     'action.create.end', 'job.create.end',
                     'job.update.end', 'job.delete.end']
    assert SECRET not in json.dumps(got)
    backup = got[0]['payload']
    assert backup['id'] == backup_id
    assert backup['project_id'] == helpers.PROJECT_A
    assert backup['user_id'] == 'alice'
    assert backup['event_id'] == f'{helpers.PROJECT_A}:1'
    assert got[4]['payload']['fields'] == ['description']
    assert got[4]['payload']['version'] == 2
    assert all(m['priority'] == 'INFO' for m in got)
    assert got[0]['publisher_id'].startswith('backup.')


def test_a_health_occurrence_is_sent_once_by_several_processes(
        bus_conf, driver, amqp):
    senders = [make_notifications(bus_conf, SQLAlchemyDriver(bus_conf))
               for _ in range(3)]
    try:
        claimed = [s.health_event('run_failed', 'proj-a', 'job-1',
                                  '1700000000', {'result': 'fail'})
                   for s in senders]
        claimed.append(senders[0].health_event(
            'rpo_breached', 'proj-a', 'job-1', '1700000000'))
        assert claimed == [True, False, False, True]
        got = drain(amqp, want=2)
        assert sorted(m['event_type'] for m in got) == [
            'freezer.rpo.breached', 'freezer.run.failed']
        failed = [m['payload'] for m in got
                  if m['event_type'] == 'freezer.run.failed'][0]
        assert failed['event_id'] == notify.health_event_id(
            'run_failed', 'proj-a', 'job-1', '1700000000')
        assert failed['details'] == {'result': 'fail'}
        assert drain(amqp, timeout=2) == []
    finally:
        for sender in senders:
            sender.stop()
            sender._storage.close()


def test_with_the_bus_down_the_api_answers_and_sending_resumes(
        bus_conf, driver, policy_enforcer, rabbitmq_server, amqp):
    """What is guaranteed with the bus down: the API answers at its usual
    speed, every change keeps its audit record (the outbox), and sending
    resumes by itself once the bus is back, reading back from the trail
    what did not fit in memory; the broker confirmed what it took before
    it stopped, and kept it (durable queue)."""
    # a small memory: most events wait in the audit trail
    sender = make_notifications(bus_conf, driver, max_pending=3)
    v2 = make_api(bus_conf, driver, policy_enforcer, sender)
    try:
        helpers.make_backup(v2)
        helpers.make_backup(v2)
        # on the broker, not consumed, when it stops
        wait_for(lambda: position(driver, helpers.PROJECT_A) == 2)
        rabbitmq_server.stop()
        created = []
        for _ in range(8):
            started = time.monotonic()
            created.append(helpers.make_backup(v2))
            assert time.monotonic() - started < 2.0
        trail = driver.audit_chain(helpers.PROJECT_A, 2, 100)
        assert [r['doc_id'] for r in trail] == created
        rabbitmq_server.start()
        got = drain(amqp, want=10, timeout=90)
        seqs = [m['payload']['audit_seq'] for m in got]
        assert seqs == list(range(1, 11)), seqs
        wait_for(lambda: position(driver, helpers.PROJECT_A) == 10)
        after = helpers.make_backup(v2)
        assert [m['payload']['id'] for m in drain(amqp, want=1)] == [after]
    finally:
        sender.stop()


def wait_for(check, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, 'not in time'
        time.sleep(0.05)


def _api_process(tmp_path, url, count, written):
    """An API process (run apart): writes ``count`` backups, says so,
    then waits to be killed with its events unsent."""
    conf = make_bus_conf(tmp_path, url)
    driver = SQLAlchemyDriver(conf)
    sender = make_notifications(conf, driver, lease=2.0)
    v2 = make_api(conf, driver, policies.get_enforcer(conf), sender)
    for _ in range(count):
        helpers.make_backup(v2)
    written.set()
    time.sleep(600)


def test_events_a_killed_process_left_unsent_are_sent_by_the_next(
        bus_conf, driver, tmp_path, rabbitmq_server, amqp):
    """The broker down, a process writes documents and is killed (SIGKILL)
    with its events unsent; a new process sends them once the bus is back
    (its lease on them ended), each once."""
    rabbitmq_server.stop()
    try:
        context_ = multiprocessing.get_context('spawn')
        written = context_.Event()
        process = context_.Process(target=_api_process, args=(
            tmp_path, rabbitmq_server.url, 5, written))
        process.start()
        try:
            assert written.wait(120), 'the API process wrote nothing'
        finally:
            process.kill()
            process.join(30)
        assert driver.audit_head(helpers.PROJECT_A)[0] == 5
        assert position(driver, helpers.PROJECT_A) == 0
    finally:
        rabbitmq_server.start()
    sender = make_notifications(bus_conf, driver, resume_interval=0.5)
    try:
        got = drain(amqp, want=5, timeout=90)
        assert [m['payload']['event_id'] for m in got] == [
            f'{helpers.PROJECT_A}:{seq}' for seq in range(1, 6)]
        wait_for(lambda: position(driver, helpers.PROJECT_A) == 5)
        assert drain(amqp, timeout=2) == []
        assert sender.sent == 5
    finally:
        sender.stop()


def test_two_api_processes_do_not_both_send_a_range(
        bus_conf, driver, policy_enforcer, amqp):
    senders = [make_notifications(bus_conf, SQLAlchemyDriver(bus_conf),
                                  resume_interval=0.2) for _ in range(2)]
    apis = [make_api(bus_conf, s._storage, policy_enforcer, s)
            for s in senders]
    try:
        for number in range(12):
            helpers.make_backup(apis[number % 2])
        got = drain(amqp, want=12)
        wait_for(lambda: position(driver, helpers.PROJECT_A) == 12)
        got += drain(amqp, timeout=2)
        assert [m['payload']['audit_seq'] for m in got] == list(
            range(1, 13))
        assert senders[0].sent + senders[1].sent == 12
    finally:
        for sender in senders:
            sender.stop()
            sender._storage.close()


def test_a_failed_run_is_announced_once(api, amqp, monkeypatch):
    """The ledger's failed run becomes one freezer.run.failed, however
    often its job's health is read (runs, coverage)."""
    v2, sender = api
    monkeypatch.setattr(notify, '_sink', sender.health_event)
    client_id = helpers.register_client(v2, 'node1')
    job_id = helpers.create(v2, 'jobs', helpers.job_body(
        client_id, job_schedule={'schedule_interval': '10 minutes'}))
    started = int(time.time())
    for schedule in ({'status': 'running', 'result': '',
                      'time_started': started, 'time_ended': -1},
                     {'status': 'scheduled', 'result': 'fail',
                      'time_ended': started + 1}):
        assert v2.patch('jobs', job_id, json={
            'job_schedule': schedule}).status_code == 200
    for _ in range(2):
        assert v2.get('jobs', job_id, 'runs').status_code == 200
        assert v2.get('coverage').status_code == 200
    got = [m for m in drain(amqp, want=7)
           if m['event_type'].startswith('freezer.')]
    failed = [m['payload'] for m in got
              if m['event_type'] == 'freezer.run.failed']
    assert len(failed) == 1, got
    assert failed[0]['subject_id'] == job_id
    assert failed[0]['details']['client_id'] == client_id
    assert v2.get('jobs', job_id, 'runs').status_code == 200
    assert not [m for m in drain(amqp, timeout=2)
                if m['event_type'] == 'freezer.run.failed']
