import pytest

from configs import default
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
