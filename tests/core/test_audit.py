"""The pure rules of the audit trail: changed fields, the hash chain and
its verification, time parameters."""

import os
import uuid

from hypothesis import given
from hypothesis import strategies as st
import pytest

from freezer_api.core import audit
from freezer_api.core.errors import InvalidInput


def sealed(count, prev_seq=0, prev_hash=audit.GENESIS):
    return audit.seal([{'project_id': 'p', 'at': n, 'n': n}
                       for n in range(count)], prev_seq, prev_hash)


def test_changed_fields_name_leaves_not_values():
    old = {'a': 1, 'b': {'c': 2, 'd': [1]}, 'gone': 'x', 'same': {'k': 1}}
    new = {'a': 1, 'b': {'c': 3, 'd': [1, 2]}, 'new': 'secret',
           'same': {'k': 1}}
    assert audit.changed_fields(old, new) == ['b.c', 'b.d', 'gone', 'new']
    assert audit.changed_fields({}, {'x': {'y': 1}}) == ['x']
    assert audit.changed_fields(old, old) == []


# JSON without floats, as audit records are: every character, integers
# past 64 bits too (both make the fast encoder hand over to json)
_FLOATLESS_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(),
                                                          children),
    max_leaves=20)


@given(st.dictionaries(st.text(), _FLOATLESS_JSON))
def test_canonical_text_is_the_stdlib_json_of_every_floatless_record(record):
    # the hash of every record written before must still match
    assert audit._canonical_text(record) == audit._stdlib_canonical(record)


def test_canonical_text_keeps_records_of_the_old_encoder_verifiable():
    records = sealed(2)
    for record in records:
        body = {k: v for k, v in record.items() if k != 'hash'}
        assert record.text == (audit._stdlib_canonical(body)[:-1]
                               + f',"hash":"{record["hash"]}"}}')
    for unusual in ({'user_id': 'caf\u00e9'}, {'user_id': 'del\x7f'},
                    {'n': 2 ** 70}, {'\x7f': 1}, {'c': '\x00\x1f"\\'}):
        assert (audit._canonical_text(unusual)
                == audit._stdlib_canonical(unusual)), unusual


def test_record_ids_are_unique_uuid4_and_new_in_a_forked_child(
        monkeypatch):
    ids = [audit.new_record_id() for _ in range(1000)]
    assert len(set(ids)) == 1000
    for text in ids[:3]:
        parsed = uuid.UUID(hex=text)
        assert parsed.hex == text and parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
    # another pid, as in a process forked after the first ids: another
    # prefix, so its ids cannot meet the parent's
    parent = audit.new_record_id()
    pid = os.getpid()
    monkeypatch.setattr(audit.os, 'getpid', lambda: pid + 1)
    child = audit.new_record_id()
    assert child[:16] != parent[:16]
    assert len(set(ids) | {parent, child}) == 1002


def test_entry_lists_at_most_max_fields():
    actor = audit.Actor('u', 'p', ('member',), 'POST', '/r')
    doc = {f'f{n:03}': n for n in range(audit.MAX_FIELDS + 5)}
    entry = audit.entry_for(actor, 1, 'insert', 'jobs', 'j', 'p', 1, None,
                            doc)
    assert len(entry['fields']) == audit.MAX_FIELDS
    assert entry['fields_truncated'] is True
    assert entry['action'] == 'created'


def test_seal_chains_and_verify_accepts():
    records = sealed(4)
    assert [r['seq'] for r in records] == [1, 2, 3, 4]
    assert records[0]['prev_hash'] == audit.GENESIS
    for before, after in zip(records, records[1:]):
        assert after['prev_hash'] == before['hash']
    verdict = audit.verify('p', records, (4, records[-1]['hash']))
    assert verdict.ok and verdict.checked == 4


def test_the_hash_covers_every_field_and_its_order_does_not_matter():
    record = sealed(1)[0]
    assert audit.record_hash(dict(reversed(list(record.items())))) == \
        record['hash']
    for key in ('at', 'n', 'project_id', 'seq', 'prev_hash'):
        changed = dict(record, **{key: 'other'})
        assert audit.record_hash(changed) != record['hash']


@pytest.mark.parametrize('damage, seq, reason', [
    (lambda r: r[2].update(n=99), 3, 'hash does not match'),
    (lambda r: r.pop(1), 2, 'record 2 is missing'),
    (lambda r: r[0].update(prev_hash='f' * 64), 1, 'first record'),
    (lambda r: r[3].update(project_id='q'), 4, 'another project'),
    (lambda r: r[1].pop('hash'), 2, 'hash does not match'),
    (lambda r: r[1].pop('prev_hash'), 2, 'prev_hash'),
    (lambda r: r[1].update(seq='x'), 2, 'record 2 is missing'),
])
def test_verify_reports_the_first_bad_record(damage, seq, reason):
    records = sealed(4)
    damage(records)
    verdict = audit.verify('p', records)
    assert not verdict.ok
    assert verdict.broken_seq == seq and reason in verdict.reason


def test_a_purged_start_is_an_anchor():
    records = sealed(5)[2:]
    verdict = audit.verify('p', records)
    assert verdict.ok and verdict.first_seq == 3


@pytest.mark.parametrize('text, expected', [
    (None, None), ('0', 0), ('1700000000.5', 1_700_000_000_500_000),
    ('2023-11-14T22:13:20Z', 1_700_000_000_000_000),
    ('2023-11-14T22:13:20', 1_700_000_000_000_000),
    ('2023-11-15T00:13:20+02:00', 1_700_000_000_000_000),
])
def test_parse_time(text, expected):
    assert audit.parse_time(text, 'since') == expected


@pytest.mark.parametrize('text', ['', ' ', 'nan', 'inf', '-1', '1e30',
                                  'yesterday', '2023-13-01', 'x' * 100])
def test_bad_times(text):
    with pytest.raises(InvalidInput):
        audit.parse_time(text, 'since')


def test_without_an_actor_nothing_is_recorded():
    calls = []

    class Driver:
        def atomic(self, change):
            return change(Txn())

    class Txn:
        def insert(self, *args):
            calls.append('insert')

        def append_audit(self, *args):
            calls.append('audit')

    storage = audit.AuditedStorage(Driver())
    storage.atomic(lambda txn: txn.insert('jobs', 'j', 'p', 'u', 1, {}))
    assert calls == ['insert']
