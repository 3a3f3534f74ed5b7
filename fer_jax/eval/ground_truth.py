"""Expression translations scored against ground truth: the same photo rendered with the target's expression.

A real dataset cannot say what a given face would look like smiling; the procedural renderer can. For each
held-out pool face (subject, emotion, repeat) and each target emotion, `fer_jax.data.faces.render_as` draws
the same person with the same pose, lighting, contrast, blur, sensor noise and expression intensity, with the
target's action units switched on instead. A translation is then scored by its mean absolute error against
that render over the face region (the face ellipse of the input or of the truth: a dropped jaw lengthens it),
in [0, 1] pixel units, next to two baselines:

- do nothing: the input itself (what a generator that copies its input scores; an expression GAN must beat it
  to be adding the expression rather than noise);
- blurred input: the input through a small Gaussian-like blur (what a generator that only re-draws its input,
  softer, scores);
- the truth at mid intensity: the same photo with the target's expression at the middle of the intensity range
  (what a perfect generator that cannot know the photo's intensity would draw: the floor, not a bar).

Pairs whose target is the input's own emotion have an error of 0 for "do nothing"; the summary numbers are over
the other pairs (`changed`), and the error on the own-emotion pairs is reported apart (`l1_same_emotion`).

The expression judge (`fer_jax.eval.small_cnn`) is scored on the same pairs: its accuracy on the ground-truth
renders is the most it can say about a perfect translator, and comparing it with its accuracy on the GAN's
output shows whether it is reading the expression or being fooled by pixel patterns.

Only a GAN pool that is one procedural source has ground truth; for others `evaluate` says why it is absent.
"""

import numpy as np

from fer_jax.data import emotions, faces, procedural_tfds, sources

# Coverage above which a pixel counts as the face's.
FACE_THRESHOLD = 0.5
# Grey levels by which the truth must differ from the input for a pixel to count as changed by the expression.
CHANGE_LEVELS = 5


def renderer_config(config):
  """The pool's ProceduralFacesConfig, or (None, why there is no ground truth)."""
  srcs = sources.parse_sources(config.data.pool_sources, 'data.pool_sources')
  if len(srcs) != 1 or srcs[0].kind != 'procedural':
    return None, f'data.pool_sources={config.data.pool_sources!r} is not one procedural source'
  if (srcs[0].split or 'pool') != 'pool':
    return None, f'data.pool_sources={config.data.pool_sources!r} reads split {srcs[0].split!r}, not the pool'
  cfg = procedural_tfds.ProceduralFacesConfig.from_config(srcs[0].arg, config.data.image_size, config.data.procedural)
  return cfg, None


def pool_specs(cfg, subjects):
  """The pool split's (subject, emotion, repeat) triples of the given subjects, in the dataset's order."""
  keep = set(int(s) for s in subjects)
  return np.array([s for s in cfg.split_specs()['pool'] if s[0] in keep], np.int32).reshape(-1, 3)


def _blur(x):
  """float [N,H,W] through a 5-tap binomial blur (sigma ~1 px), edges repeated."""
  k = np.array([1, 4, 6, 4, 1], np.float32) / 16
  p = np.pad(x, ((0, 0), (2, 2), (2, 2)), mode='edge')
  h = sum(k[i] * p[:, :, i : i + x.shape[2]] for i in range(5))
  return sum(k[i] * h[:, i : i + x.shape[1]] for i in range(5))


def _uint8(x):
  return np.clip(np.rint(x), 0, 255).astype(np.uint8)[..., None]


def blur(images):
  """uint8 [N,H,W,1] -> the same through a 5-tap binomial blur (sigma ~1 px), edges repeated."""
  return _uint8(_blur(images[..., 0].astype(np.float32)))


def region_l1(images, truth, region):
  """Per image: mean |images - truth| in [0, 1] pixel units over the pixels of `region` [N,H,W] (bool)."""
  d = np.abs(images[..., 0].astype(np.float32) - truth[..., 0].astype(np.float32)) / 255.0
  return (d * region).sum((1, 2)) / np.maximum(region.sum((1, 2)), 1)


def pairs(cfg, subjects):
  """Every held-out face with every target emotion.

  -> dict(inputs, truth, truth_at_mid_intensity uint8 [P,H,W,1]; source, target [P] emotions; truth_aus
  [P, NUM_AUS] the truth's action units; region bool [P,H,W]; specs [P,3]).
  """
  specs = pool_specs(cfg, subjects)
  if not len(specs):
    raise ValueError(f'none of the subjects {sorted(subjects)[:5]}... is in the procedural pool')
  c = len(emotions.EMOTIONS)
  render = lambda sp, shown=None: faces.render_specs(
    sp, cfg.image_size, cfg.seed, cfg.domain, cfg.min_intensity, cfg.max_intensity, shown=shown
  )
  inputs, meta = render(specs)
  rep = np.repeat(np.arange(len(specs)), c)
  target = np.tile(np.arange(c, dtype=np.int32), len(specs))
  truth, tmeta = render(specs[rep], target)
  mid = (cfg.min_intensity + cfg.max_intensity) / 2
  typical, _ = faces.render_specs(specs[rep], cfg.image_size, cfg.seed, cfg.domain, mid, mid, shown=target)
  region = np.maximum(meta['face'][rep], tmeta['face']) > FACE_THRESHOLD
  return dict(
    inputs=inputs[rep],
    truth=truth,
    truth_at_mid_intensity=typical,
    source=specs[rep, 1],
    target=target,
    truth_aus=tmeta['aus'],
    region=region,
    specs=specs[rep],
  )


def truth_for(config, images, subjects):
  """The ground truth of pool faces `images` (uint8 [n,H,W,1]) of `subjects` [n] for every target: (uint8
  [n, 7, H, W, 1], their action units [n, 7, NUM_AUS]), or (None, None) when the pool has no ground truth (the
  samples grid's truth rows)."""
  cfg, _ = renderer_config(config)
  if cfg is None:
    return None, None
  specs = pool_specs(cfg, subjects)
  rendered, _ = faces.render_specs(specs, cfg.image_size, cfg.seed, cfg.domain, cfg.min_intensity, cfg.max_intensity)
  index = {x.tobytes(): i for i, x in enumerate(rendered)}
  found = [index.get(np.asarray(x).tobytes()) for x in images]
  if None in found:  # not the renderer's faces (another pool, other settings): no truth to show
    return None, None
  c = len(emotions.EMOTIONS)
  picked = specs[np.repeat(found, c)]
  truth, meta = faces.render_specs(
    picked,
    cfg.image_size,
    cfg.seed,
    cfg.domain,
    cfg.min_intensity,
    cfg.max_intensity,
    shown=np.tile(np.arange(c), len(images)),
  )
  return truth.reshape(len(images), c, *truth.shape[1:]), meta['aus'].reshape(len(images), c, -1)


def _mean(x, where):
  return float(np.mean(x[where])) if np.any(where) else None


def _change_drawn(drawn, change, region, rows):
  """How much of the expression's change a translation draws, and how much it draws besides, over the face
  pixels of `rows`: `share` the least-squares slope of the drawn change (translation - input) on the true change
  (1: all of it, 0: none; a face drawn weaker than the truth below 1), `off_truth` the mean |drawn - share x true
  change| over the mean |true change| (0: every drawn change is the truth's, in its place). A perfect generator at
  a fraction f of the truth's intensity has share f and off_truth ~0 (`synthetic.oracle_intensity`)."""
  if not rows.any():
    return {'share': None, 'off_truth': None}
  m = region[rows]
  d, c = drawn[rows][m], change[rows][m]
  norm = float(np.square(c).sum())
  share = float((d * c).sum()) / norm if norm else None
  off = float(np.abs(d - (share or 0.0) * c).mean() / max(np.abs(c).mean(), 1e-9))
  return {'share': share, 'off_truth': off}


def score(p, translated, judge=None):
  """The ground_truth section of an expression GAN's metrics: `p` from `pairs`, `translated` the GAN's output
  for p['inputs'] -> p['target'] (uint8), `judge` a function images -> logits over EMOTIONS (or None)."""
  region, truth, target, inputs = p['region'], p['truth'], p['target'], p['inputs']
  change = truth[..., 0].astype(np.float32) - inputs[..., 0].astype(np.float32)
  moved = (np.abs(change) > CHANGE_LEVELS) & region  # the pixels the expression changes
  err = {
    'l1': region_l1(translated, truth, region),
    'l1_do_nothing': region_l1(inputs, truth, region),
    'l1_blurred_input': region_l1(blur(inputs), truth, region),
    'l1_truth_at_mid_intensity': region_l1(p['truth_at_mid_intensity'], truth, region),
    # Perfect expressions drawn softly: how much of the bar a one-pixel blur of the drawing alone uses up.
    'l1_blurred_truth_where_changed': region_l1(np.where(moved[..., None], blur(truth), inputs), truth, region),
    'l1_input_plus_blurred_change': region_l1(_uint8(inputs[..., 0] + _blur(change)), truth, region),
  }
  changed = p['source'] != target
  out = {k: _mean(v, changed) for k, v in err.items()}
  out['l1_over_do_nothing'] = out['l1'] / out['l1_do_nothing'] if out['l1_do_nothing'] else None
  out['l1_same_emotion'] = _mean(err['l1'], ~changed)
  # Where the error is: l1 = on_changed + on_unchanged (each a sum over those face pixels / all face pixels).
  n = np.maximum(region.sum((1, 2)), 1)
  diff = np.abs(translated[..., 0].astype(np.float32) - truth[..., 0].astype(np.float32)) / 255.0
  out['split'] = {
    'changed_pixel_share': _mean(moved.sum((1, 2)) / n, changed),
    'on_changed': _mean((diff * moved).sum((1, 2)) / n, changed),
    'on_unchanged': _mean((diff * (region & ~moved)).sum((1, 2)) / n, changed),
    'do_nothing_on_changed': _mean((np.abs(change) / 255.0 * moved).sum((1, 2)) / n, changed),
    'changed_levels': CHANGE_LEVELS,
  }
  drawn = translated[..., 0].astype(np.float32) - inputs[..., 0].astype(np.float32)
  out['change_drawn'] = _change_drawn(drawn, change, region, changed)
  per = {
    name: {k: _mean(v, changed & (target == t)) for k, v in err.items()} for t, name in enumerate(emotions.EMOTIONS)
  }
  for t, name in enumerate(emotions.EMOTIONS):
    per[name]['change_drawn_share'] = _change_drawn(drawn, change, region, changed & (target == t))['share']
  if judge is not None:
    on_truth = np.asarray(judge(truth)).argmax(1) == target
    on_gan = np.asarray(judge(translated)).argmax(1) == target
    out['judge_on_truth'] = _mean(on_truth, changed)
    out['judge_on_translations'] = _mean(on_gan, changed)
    for t, name in enumerate(emotions.EMOTIONS):
      per[name]['judge_on_truth'] = _mean(on_truth, changed & (target == t))
      per[name]['judge_on_translations'] = _mean(on_gan, changed & (target == t))
  out['per_target'] = per
  out['num_pairs'] = int(changed.sum())
  out['num_faces'] = int(len(np.unique(p['specs'], axis=0)))
  out['region'] = f'face ellipse of the input or of the truth (coverage > {FACE_THRESHOLD})'
  return out


def evaluate(config, subjects, translate, judge=None):
  """`score` of `translate(p) -> uint8` (p: `pairs`, whose inputs are to become p['target'], with the action
  units p['truth_aus'] for a generator told AUs) on every held-out subject's pool faces x every target;
  {'available': False, 'reason': ...} when the pool has no ground truth."""
  cfg, why = renderer_config(config)
  if cfg is None:
    return {'available': False, 'reason': why}
  p = pairs(cfg, subjects)
  return {'available': True, **score(p, translate(p), judge)}
