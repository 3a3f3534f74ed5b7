"""Each network against its PyTorch peer on this machine, side by side: a markdown table of medians.

  python3 -m venv .venv-torch && .venv-torch/bin/pip install torch==2.13.0 numpy   # the peers' own venv
  python -m experiments.compare_peers --rounds=3 > peers.md

For every case (the classifier, StarGAN and the StyleGAN2-style identity GAN, each at the quick preset's shapes and
at the paper's) it runs `experiments.benchmark` and `experiments/torch_peers.py` one after the other, case by case,
`--rounds` times (alternating, so that a slow minute of the machine falls on both), and prints per case: the
parameter counts (equal, or the comparison is void), the medians of img/s, their ratio, and our step's FLOP rate and
roofline fraction (`experiments.benchmark`). Every run's JSON line goes to stderr as well. Run it on a quiet machine.
"""

import json
import os
import statistics
import subprocess
import sys

from absl import app, flags

flags.DEFINE_integer('rounds', 3, 'Alternating runs of each side per case (medians are reported).')
flags.DEFINE_string('torch_python', '.venv-torch/bin/python', "The peers' interpreter (a venv with torch==2.13.0).")
flags.DEFINE_list('cases', [], 'A subset of the cases to run (default: all).')
FLAGS = flags.FLAGS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STARGAN_QUICK = dict(batch_size=16, image_size=32, conv_dim=16, repeat_num=3, d_repeat_num=4, steps=40)
STARGAN_PAPER = dict(batch_size=16, image_size=64, conv_dim=64, repeat_num=6, d_repeat_num=5, steps=5)
STYLEGAN_PAPER = dict(z_dim=512, w_dim=512, mapping_layers=8, channels=256, max_channels=512)
# case: (our benchmark's flags, the peer's command). The networks and shapes of the quick and paper presets
# (StarGAN's step is the peer's: plain StarGAN told the emotion; the identity GAN's is the preset's own).
CASES = {
  'classifier quick': (
    dict(what='classifier', batch_size=64, image_size=32, steps=60),
    ('classifier', dict(batch_size=64, image_size=32, steps=60)),
  ),
  'expression GAN quick': (dict(what='expression_gan', **STARGAN_QUICK), ('stargan', STARGAN_QUICK)),
  'identity GAN quick': (
    dict(what='identity_gan', preset='quick', batch_size=32, image_size=32, steps=64),
    ('stylegan', dict(batch_size=32, image_size=32, steps=64)),
  ),
  'classifier paper': (
    dict(what='classifier', batch_size=64, image_size=64, steps=20),
    ('classifier', dict(batch_size=64, image_size=64, steps=20)),
  ),
  'expression GAN paper': (dict(what='expression_gan', **STARGAN_PAPER), ('stargan', STARGAN_PAPER)),
  'identity GAN paper': (
    dict(what='identity_gan', preset='paper', batch_size=32, image_size=64, steps=4),
    (
      'stylegan',
      dict(batch_size=32, image_size=64, steps=4, warmup=1, lr=2e-3, style_mixing_prob=0.9, **STYLEGAN_PAPER),
    ),
  ),
}


def _last_json(argv):
  proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)
  lines = [x for x in proc.stdout.splitlines() if x.startswith('{')]
  if proc.returncode or not lines:
    raise RuntimeError(f'{" ".join(argv)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}')
  print(lines[-1], file=sys.stderr, flush=True)
  return json.loads(lines[-1])


def ours(kwargs):
  return _last_json([sys.executable, '-m', 'experiments.benchmark', *(f'--{k}={v}' for k, v in kwargs.items())])


def peer(what, kwargs):
  argv = [FLAGS.torch_python, os.path.join('experiments', 'torch_peers.py'), what]
  return _last_json(argv + [x for k, v in kwargs.items() for x in (f'--{k}', str(v))])


def main(argv):
  del argv
  if not os.path.exists(os.path.join(ROOT, FLAGS.torch_python)) and not os.path.exists(FLAGS.torch_python):
    raise SystemExit(f'compare_peers: no interpreter at {FLAGS.torch_python} (see this module docstring for its venv)')
  cases = FLAGS.cases or list(CASES)
  unknown = sorted(set(cases) - set(CASES))
  if unknown:
    raise SystemExit(f'compare_peers: unknown case(s) {unknown}; expected some of {list(CASES)}')
  runs = {c: {'ours': [], 'peer': []} for c in cases}
  for _ in range(FLAGS.rounds):
    for c in cases:
      mine, (what, theirs) = CASES[c]
      runs[c]['ours'].append(ours(mine))
      runs[c]['peer'].append(peer(what, theirs))
  print('| network, shapes | parameters (ours / peer) | ours img/s | PyTorch img/s | ratio | our GFLOP/s | roofline |')
  print('|---|---|---|---|---|---|---|')
  for c in cases:
    a, b = runs[c]['ours'], runs[c]['peer']
    mine, theirs = (statistics.median(r['img_per_s'] for r in x) for x in (a, b))
    gflops = statistics.median(r['gflop_per_s'] for r in a)
    roof = statistics.median(r['roofline_fraction'] for r in a)
    print(
      f'| {c} | {a[0]["params"]:,} / {b[0]["params"]:,} | {mine:.2f} | {theirs:.2f} | {mine / theirs:.2f}x '
      f'| {gflops:.0f} | {100 * roof:.0f}% |'
    )
  peaks = [r['matmul_peak_gflop_per_s'] for c in cases for r in runs[c]['ours']]
  print(f'\nmatmul peak (2048 x 2048 float32, with each of our runs): median {statistics.median(peaks):.0f} GFLOP/s')
  print(f'{FLAGS.rounds} alternating rounds; device {runs[cases[0]]["ours"][0]["device"]}, torch {b[0]["torch"]}')


if __name__ == '__main__':
  app.run(main)
