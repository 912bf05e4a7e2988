"""Notifications on a real RabbitMQ (issue 16.2): the events of document
writes and health occurrences, consumed from the bus; with the bus down
the API keeps answering and nothing the store knows about is lost."""

import json
import time

import falcon.testing
import kombu
import pytest

from freezer_api import notifications
from freezer_api.api import app as app_module
from freezer_api.api import context
from freezer_api.core import notify
from freezer_api.storage.sqlalchemy.driver import SQLAlchemyDriver
from tests.api import helpers
from tests.conftest import make_conf

QUEUE = 'notifications.info'
SECRET = 'hunter2-in-the-backup'


@pytest.fixture
def bus_conf(tmp_path, rabbitmq_server):
    conf = make_conf(tmp_path)
    notifications.register_opts(conf)
    conf.set_override('driver', ['messagingv2'], group=notifications.GROUP)
    conf.set_override('transport_url', rabbitmq_server.url,
                      group=notifications.GROUP)
    # NOTE: as in production: durable exchange and queues survive a
    # broker restart, so what is sent once it is back is not dropped for
    # want of a queue.
    from oslo_messaging._drivers import amqp as om_amqp
    conf.register_opts(om_amqp.amqp_opts, group='oslo_messaging_rabbit')
    conf.set_override('amqp_durable_queues', True,
                      group='oslo_messaging_rabbit')
    return conf


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
    what did not fit in memory.

    NOTE: events handed to the broker around its restart may be lost
    (oslo.messaging's notifier publishes without confirms and reported no
    failure for them here): see the README, Notifications."""
    # a small queue: most events wait in the audit trail, not in memory
    sender = make_notifications(bus_conf, driver, max_pending=3)
    app = app_module.create_app(bus_conf, driver, enforcer=policy_enforcer,
                                notifications=sender)
    v2 = helpers.Api(falcon.testing.TestClient(
        context.NoAuthMiddleware(app, bus_conf)), 'v2')
    try:
        helpers.make_backup(v2)
        assert len(drain(amqp, want=1)) == 1
        rabbitmq_server.stop()
        created = []
        for _ in range(8):
            started = time.monotonic()
            created.append(helpers.make_backup(v2))
            assert time.monotonic() - started < 2.0
        trail = driver.audit_chain(helpers.PROJECT_A, 1, 100)
        assert [r['doc_id'] for r in trail] == created
        rabbitmq_server.start()
        got = drain(amqp, want=1, timeout=90)
        seqs = [m['payload']['audit_seq'] for m in got]
        assert seqs == sorted(seqs) and seqs[-1] == 9, seqs
        after = helpers.make_backup(v2)
        assert [m['payload']['id'] for m in drain(amqp, want=1)] == [after]
    finally:
        sender.stop()


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
