"""The oslo.policy tools work for namespace freezer-api (entry points)."""

import os
import subprocess
import sys

import yaml

from freezer_api import policies

BIN = os.path.dirname(sys.executable)


def run(tool, *args, cwd=None):
    proc = subprocess.run([os.path.join(BIN, tool), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_the_policy_generator_prints_every_rule(tmp_path):
    out = yaml.safe_load(run('oslopolicy-policy-generator', '--namespace',
                             'freezer-api'))
    names = {rule.name for rule in policies.list_rules()}
    assert set(out) == names
    assert 'clients:create_central' in out and 'jobs:get_all_projects' in out
    assert out['jobs:get_all_projects'] == 'role:admin'


def test_the_policy_generator_applies_a_policy_file(tmp_path):
    config = tmp_path / 'freezer-api.conf'
    policy_file = tmp_path / 'policy.yaml'
    policy_file.write_text('"backups:create": "role:reader"\n')
    config.write_text(f'[oslo_policy]\npolicy_file = {policy_file}\n')
    out = yaml.safe_load(run('oslopolicy-policy-generator', '--namespace',
                             'freezer-api', '--config-file', str(config)))
    assert out['backups:create'] == 'role:reader'
    assert out['backups:delete'] != 'role:reader'


def test_the_sample_generator_documents_every_rule(tmp_path):
    out = tmp_path / 'policy.yaml.sample'
    run('oslopolicy-sample-generator', '--namespace', 'freezer-api',
        '--output-file', str(out))
    text = out.read_text()
    for rule in policies.list_rules():
        assert f'"{rule.name}"' in text
