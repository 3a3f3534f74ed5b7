import dataclasses
import inspect

import pytest

from configs import default
from fer_jax.eval import small_cnn
from fer_jax.models import stargan, stylegan
from fer_jax.models.classifier import PaperCNN
from tests.conftest import run_module


@pytest.mark.parametrize('preset', default.PRESETS)
def test_presets_load_and_are_locked(preset):
  c = default.get_config(preset)
  assert c.preset == preset
  for section in ('data', 'identity_gan', 'expression_gan', 'synthetic', 'classifier', 'sweep'):
    assert section in c
  with pytest.raises(AttributeError):
    c.classifer = 1  # a misspelt key from Python is an error, not a new field


def test_paper_preset_is_paper_scale():
  c = default.get_config('paper')
  assert c.data.image_size == 64 and c.classifier.num_classes == 6
  assert c.expression_gan.repeat_num == 6 and c.expression_gan.conv_dim == 64
  # StarGAN's recipe, whatever quick departs to: plain output, plain critic, its losses and optimiser.
  e = c.expression_gan
  recipe = dict(attention=False, cls_augment=False, lambda_id=0.0, n_critic=5, g_lr=1e-4, d_lr=1e-4)
  recipe.update(lambda_cls=1.0, lambda_rec=10.0, lambda_gp=10.0, betas=(0.5, 0.999), d_repeat_num=5)
  assert {k: e[k] for k in recipe} == recipe
  assert c.classifier.lr == 1e-4


# The paper preset's recipes, field by field. Every field of a section is either pinned here or named as not part
# of the recipe, so a field added to quick (with quick's value) cannot slip into the paper preset unseen.
STARGAN = dict(  # Choi et al. 2018 (RaFD), 7 classes
  num_classes=7,
  conv_dim=64,
  repeat_num=6,
  d_repeat_num=5,
  batch_size=16,
  steps=200_000,
  n_critic=5,
  g_lr=1e-4,
  d_lr=1e-4,
  betas=(0.5, 0.999),
  lambda_cls=1.0,
  lambda_rec=10.0,
  lambda_gp=10.0,
  lambda_id=0.0,
  lambda_pair=0.0,  # no paired loss in StarGAN
  attention=False,
  cls_augment=False,
  condition='emotion',
)
# lambda_mask/lambda_tv weigh nothing without attention, pair_pool and pair_shift nothing without lambda_pair; the EMA
# generator is this codebase's, in every preset.
STARGAN_OTHER = {'lambda_mask', 'lambda_tv', 'pair_pool', 'pair_shift', 'ema_decay', 'ema_warmup', 'conv_impl', 'dtype'}
STARGAN_OTHER |= {'eval_batch_size'}
STARGAN_OTHER |= {'sample_every', 'checkpoint_every', 'log_every', 'sample_faces'}
CLASSIFIER = dict(  # the paper's CNN and protocol: Adam 1e-4, up to 50 epochs, early stopping from the first
  num_classes=6, lr=1e-4, batch_size=64, num_epochs=50, patience=5, max_steps=0, min_steps=0, mix='concat'
)
# How it runs (not what it computes), and the per-run fields the sweep sets.
CLASSIFIER_OTHER = {'eval_batch_size', 'checkpoint_every_seconds', 'conv_impl', 'dtype'}
CLASSIFIER_OTHER |= {
  'regime',
  'multiple',
  'real_fraction',
  'synthetic_source',
  'synthetic_fraction',
  'synthetic_weight',
}
STYLEGAN2 = dict(  # Karras et al. 2020 at 64x64
  z_dim=512,
  w_dim=512,
  mapping_layers=8,
  mapping_lr_mul=0.01,
  channels=256,
  max_channels=512,
  lr=2e-3,
  betas=(0.0, 0.99),
  style_mixing_prob=0.9,
  batch_size=32,
  num_classes=0,  # unconditional: the two-stage study's random identities
)


@pytest.mark.parametrize(
  'section,recipe,other', [('expression_gan', STARGAN, STARGAN_OTHER), ('classifier', CLASSIFIER, CLASSIFIER_OTHER)]
)
def test_paper_preset_keeps_the_whole_recipe(section, recipe, other):
  s = default.get_config('paper')[section]
  assert set(s) == set(recipe) | other, 'a field is neither in the recipe nor named as outside it'
  got = {k: s[k] for k in recipe}
  assert got == recipe
  assert {k: type(v) for k, v in got.items()} == {k: type(v) for k, v in recipe.items()}  # 0 is not 0.0


def test_paper_identity_gan_is_stylegan2s():
  g = default.get_config('paper').identity_gan
  got = {k: g[k] for k in STYLEGAN2}
  assert got == STYLEGAN2
  assert {k: type(v) for k, v in got.items()} == {k: type(v) for k, v in STYLEGAN2.items()}
  assert default.get_config('paper').synthetic.psi == 0.7  # quick draws untruncated faces; paper keeps 0.7


# A model's keyword default that is also a config field is quick's value, or the model has none and every caller
# passes the config's: a default that disagrees would win, unseen, wherever a caller forgets the argument.
# {argument: config key in the section}; None: no one config value (the judge's and identity net's differ), so
# there must be no default.
G_FIELDS = dict(z_dim='z_dim', w_dim='w_dim', mapping_layers='mapping_layers', mapping_lr_mul='mapping_lr_mul')
G_FIELDS.update(channels='channels', max_channels='max_channels', num_classes='num_classes')
CNN_FIELDS = dict(width='width', embed_dim=None)
STARGAN_G = dict(conv_dim='conv_dim', repeat_num='repeat_num', attention='attention', conv_impl='conv_impl')
STARGAN_D = dict(conv_dim='conv_dim', repeat_num='d_repeat_num', conv_impl='conv_impl')
MODEL_DEFAULTS = [
  (stylegan.Generator, 'identity_gan', G_FIELDS),
  (
    stylegan.Discriminator,
    'identity_gan',
    dict(channels='channels', max_channels='max_channels', num_classes='num_classes'),
  ),
  (stargan.Generator, 'expression_gan', STARGAN_G),
  (stargan.Discriminator, 'expression_gan', STARGAN_D),
  (PaperCNN, 'classifier', dict(num_classes='num_classes', conv_impl='conv_impl')),
  (small_cnn.SmallCNN, 'eval', CNN_FIELDS),
  (small_cnn.train_cnn, 'eval', CNN_FIELDS),
  (small_cnn.predict, 'eval', CNN_FIELDS),
  (small_cnn.template, 'eval', CNN_FIELDS),
]


def _arguments(obj):
  """{name: default, or None where there is none} of a flax module's fields or a function's keywords."""
  if dataclasses.is_dataclass(obj):
    return {f.name: None if f.default is dataclasses.MISSING else f.default for f in dataclasses.fields(obj)}
  return {k: None if p.default is p.empty else p.default for k, p in inspect.signature(obj).parameters.items()}


@pytest.mark.parametrize('obj,section,fields', MODEL_DEFAULTS)
def test_no_model_default_disagrees_with_quick(obj, section, fields):
  s, args = default.get_config('quick')[section], _arguments(obj)
  for arg, key in fields.items():
    assert arg in args, f'{obj.__qualname__} has no argument {arg!r}: update this table'
    if key is None:
      assert args[arg] is None, f'{obj.__qualname__}({arg}={args[arg]!r}): no one config value, so no default'
    elif args[arg] is not None:
      assert args[arg] == s[key], f'{obj.__qualname__}({arg}={args[arg]!r}) but quick has {section}.{key}={s[key]!r}'


def test_paper_protocol_is_cross_dataset_on_mmi():
  c = default.get_config('paper')
  assert c.data.train_sources == 'rafd:/data/RaFD,oulu_casia:/data/OriginalImg'
  assert c.data.test_sources == 'mmi:/data/MMI@full'
  assert c.data.pool_sources == 'rafd:/data/RaFD'  # StarGAN learns from RaFD
  assert c.sweep.multiples == (0.5, 1, 2, 3, 5, 7, 10) and c.sweep.regimes == ('real', 'synthetic', 'mixed')


def test_unknown_preset_is_named():
  with pytest.raises(ValueError, match="unknown preset 'quik'"):
    default.get_config('quik')


def test_misspelt_override_fails_with_one_clear_line(tmp_path):
  proc = run_module(
    'experiments.preview',
    '--config=configs/default.py:tiny',
    '--config.classifer.lr=1',
    f'--workdir={tmp_path}',
    check=False,
  )
  assert proc.returncode != 0
  assert 'classifer' in proc.stderr and 'Did you mean "classifier"' in proc.stderr
  assert 'Traceback' not in proc.stderr
  assert not (tmp_path / 'data_stats.json').exists()


@pytest.mark.parametrize(
  'args,expected',
  [
    (
      ('--config=configs/default.py:quik',),
      "flag --config=configs/default.py:quik: unknown preset 'quik'; expected one of tiny, quick, paper",
    ),
    (('--config.classifier.lrr=1',), 'no config key \'lrr\'. Did you mean "lr" instead of "lrr"?'),  # no --config
  ],
)
def test_bad_config_flags_are_one_line(tmp_path, args, expected):
  proc = run_module('experiments.preview', *args, f'--workdir={tmp_path}', check=False)
  assert proc.returncode != 0 and 'Traceback' not in proc.stderr
  assert proc.stderr.strip().splitlines()[-1] == f'error: bad flag or config override: {expected}'
