"""The workdir contract (config record, lock), checkpoint fallback, config validation and one-line errors."""

import json
import os
import re
import shutil

import pytest

from fer_jax.infra import io_utils, workdirs
from fer_jax.infra.errors import UserError
from fer_jax.train import classifier, expression_gan, identity_gan
from tests.conftest import run_module


@pytest.fixture(scope='module')
def finished_run(tmp_path_factory):
  """A finished tiny classifier run (3 epochs, a checkpoint after each; the last two kept)."""
  from configs import default  # pylint: disable=import-outside-toplevel

  config = default.get_config('tiny')
  config.data.data_dir = str(tmp_path_factory.mktemp('tfds_w'))
  workdir = tmp_path_factory.mktemp('run')
  result = classifier.train_and_evaluate(config, str(workdir))
  return config, workdir, result


def _copy(src, dst):
  shutil.copytree(src, dst, ignore=shutil.ignore_patterns(workdirs.LOCK))
  return dst


@pytest.mark.parametrize('key,value', [('seed', 5), ('classifier.lr', 0.05), ('data.image_size', 64)])
def test_a_rerun_with_another_config_is_refused_naming_the_key(finished_run, tmp_path, key, value):
  config, workdir, _ = finished_run
  w = _copy(workdir, tmp_path / 'w')
  before = (w / 'metrics.json').read_bytes()
  changed = config.copy_and_resolve_references()
  section, _, leaf = key.rpartition('.')
  setattr(changed[section] if section else changed, leaf, value)
  with pytest.raises(UserError, match=rf'another config \({key}: .* -> {value}'):
    classifier.train_and_evaluate(changed, str(w))
  assert (w / 'metrics.json').read_bytes() == before


def test_settings_that_do_not_change_results_are_accepted(finished_run, tmp_path):
  config, workdir, result = finished_run
  w = _copy(workdir, tmp_path / 'w')
  same = config.copy_and_resolve_references()
  same.classifier.checkpoint_every_seconds = 30.0  # how often, not what
  same.sweep.seeds = (0, 1, 2)  # another section
  assert classifier.train_and_evaluate(same, str(w))['tests'] == result['tests']


def test_a_failed_first_attempt_leaves_no_record(tiny, tmp_path):
  tiny.classifier.lr = -1.0
  with pytest.raises(UserError, match=r'classifier.lr=-1.0; expected a number > 0'):
    classifier.train_and_evaluate(tiny, str(tmp_path))
  assert not (tmp_path / workdirs.RECORD).exists() and not (tmp_path / 'metrics.json').exists()


def test_a_record_from_before_a_key_existed_reads_as_the_old_behaviour(tiny, tmp_path):
  """Work recorded before classifier.mix (and the other ADDED keys) existed is reused with the value that computes
  what it computed; another value is a change like any other."""
  for key, value in workdirs.ADDED.items():  # the settings of work made before the keys existed
    section, leaf = key.split('.')
    tiny[section][leaf] = value
  workdirs.check_record(str(tmp_path), tiny)
  record = io_utils.read_json(tmp_path / workdirs.RECORD)
  assert set(workdirs.ADDED) <= set(record)
  io_utils.write_json(tmp_path / workdirs.RECORD, {k: v for k, v in record.items() if k not in workdirs.ADDED})
  workdirs.check_record(str(tmp_path), tiny)  # accepted
  tiny.classifier.mix = 'batch_fraction'
  with pytest.raises(UserError, match=r"classifier.mix: 'concat' -> 'batch_fraction'"):
    workdirs.check_record(str(tmp_path), tiny)
  tiny.classifier.mix = 'concat'
  tiny.expression_gan.cls_augment = True  # quick's default now: old work did not compute it
  with pytest.raises(UserError, match=r'expression_gan.cls_augment: False -> True'):
    workdirs.check_record(str(tmp_path), tiny)


@pytest.mark.parametrize('section,leaf', [('identity_gan', 'lr'), ('expression_gan', 'g_lr')])
def test_the_gan_trainers_keep_the_contract(tiny, tmp_path, section, leaf):
  trainer = {'identity_gan': identity_gan, 'expression_gan': expression_gan}[section]
  workdirs.check_record(str(tmp_path), tiny, trainer.CONFIG_KEYS)  # as their first run records it
  setattr(tiny[section], leaf, tiny[section][leaf] * 2)
  with pytest.raises(UserError, match=rf'{section}.{leaf}'):
    trainer.train_and_evaluate(tiny, str(tmp_path))
  assert set(os.listdir(tmp_path)) == {workdirs.RECORD, workdirs.LOCK}  # refused before anything was made


def test_a_second_process_on_a_workdir_is_refused_naming_the_holder(tmp_path):
  with workdirs.locked(str(tmp_path)):
    with pytest.raises(UserError, match=rf'{tmp_path} is in use by process {os.getpid()} on '):
      with workdirs.locked(str(tmp_path)):
        pass
  with workdirs.locked(str(tmp_path)):  # released when its holder ends
    pass


def _truncate_files(folder):
  for root, _, files in os.walk(folder):
    for f in files:
      open(os.path.join(root, f), 'w').close()


def test_an_unreadable_latest_checkpoint_falls_back_to_the_previous(finished_run, tmp_path):
  config, workdir, result = finished_run
  w = _copy(workdir, tmp_path / 'w')
  steps = sorted(int(p.name) for p in (w / 'checkpoints').iterdir() if p.name.isdigit())
  assert steps == [2, 3]
  _truncate_files(w / 'checkpoints' / '3')
  (w / 'metrics.json').unlink()
  again = classifier.train_and_evaluate(config, str(w))  # replays epoch 3 from the checkpoint of epoch 2
  assert again['history'] == result['history'] and again['tests'] == result['tests']
  _truncate_files(w / 'checkpoints')
  (w / 'metrics.json').unlink()
  with pytest.raises(UserError, match=r'no checkpoint in .*checkpoints can be restored .*delete that folder'):
    classifier.train_and_evaluate(config, str(w))


def test_result_files_follow_the_umask_and_corrupt_ones_are_named(tmp_path):
  path = tmp_path / 'x.json'
  io_utils.write_json(path, {'a': 1})
  mask = os.umask(0)
  os.umask(mask)
  assert os.stat(path).st_mode & 0o777 == 0o666 & ~mask
  path.write_text('{"a": ')
  with pytest.raises(UserError, match=rf'{path} is not valid JSON'):
    io_utils.read_json(path)


@pytest.mark.parametrize(
  'setup,args,match',
  [
    ('file', (), 'a file is in the way'),
    (None, ('--config.classifier.batch_size=0',), r'classifier.batch_size=0; expected a whole number > 0'),
    (None, ('--config.classifier.batch_size=18',), r'classifier.batch_size=18 is not a multiple of the 4 devices'),
    (None, ('--config.classifier.lr=-1',), r'classifier.lr=-1.0; expected a number > 0'),
  ],
)
def test_bad_input_is_one_line_without_a_traceback(tmp_path, data_dir, setup, args, match):
  w = tmp_path / 'w'
  if setup == 'file':
    w.write_text('not a directory')
  proc = run_module(
    'experiments.train_classifier',
    '--config=configs/default.py:tiny',
    f'--workdir={w}',
    f'--config.data.data_dir={data_dir}',
    *args,
    check=False,
    env={'XLA_FLAGS': '--xla_force_host_platform_device_count=4', 'JAX_PLATFORMS': 'cpu'},
  )
  assert proc.returncode != 0 and 'Traceback' not in proc.stderr
  last = proc.stderr.strip().splitlines()[-1]
  assert last.startswith('error: ') and re.search(match, last), proc.stderr[-2000:]
  if w.is_dir():  # nothing a rerun could take for finished work, and no record to trip the corrected command
    assert not (w / 'metrics.json').exists() and not (w / workdirs.RECORD).exists()


def test_relevant_keys_leave_out_where_and_how_often(tiny):
  keys = workdirs.relevant(tiny, classifier.CONFIG_KEYS)
  assert 'classifier.lr' in keys and 'seed' in keys and 'data.train_sources' in keys
  assert not any(k.startswith(('sweep.', 'identity_gan.', 'data.pool_sources')) for k in keys)
  assert 'data.data_dir' not in keys and 'classifier.checkpoint_every_seconds' not in keys
  assert 'sweep.seeds' not in workdirs.relevant(tiny) and 'identity_gan.lr' in workdirs.relevant(tiny)
  json.dumps(keys)  # a record is plain JSON


def test_a_diverging_classifier_stops_with_one_line(tmp_path, data_dir):
  proc = run_module(
    'experiments.train_classifier',
    '--config=configs/default.py:tiny',
    f'--workdir={tmp_path}',
    f'--config.data.data_dir={data_dir}',
    '--config.classifier.lr=1e30',
    check=False,
  )
  last = proc.stderr.strip().splitlines()[-1]
  assert proc.returncode != 0 and 'Traceback' not in proc.stderr
  assert re.match(r'error: classifier training loss is (nan|inf) at epoch \d+; stopped', last), last
  assert not (tmp_path / 'metrics.json').exists()


def test_a_read_only_workdir_is_one_line(tmp_path, monkeypatch):
  """(Simulated: as root, chmod does not stop writes, and the suite runs as root in CI.)"""
  monkeypatch.setattr(os, 'access', lambda path, mode: False)
  with pytest.raises(UserError, match=rf'--workdir {tmp_path}: the directory is not writable'):
    workdirs.make_dir(str(tmp_path))

  def refuse(path, exist_ok=False):
    raise PermissionError(13, 'Permission denied', path)

  monkeypatch.setattr(os, 'makedirs', refuse)
  with pytest.raises(UserError, match=r'--workdir .*/new: no permission to create it'):
    workdirs.make_dir(str(tmp_path / 'new'))
