"""PyTorch peers of our networks, for throughput comparisons on the same machine in the same session.

The same networks at the same shapes as `python -m experiments.benchmark` trains in JAX (the parameter
counts printed by both must agree):
  classifier  the paper's CNN (conv 32, conv 64, pool, dropout, conv 128, pool, conv 128, pool, dropout,
              dense 1024, dropout, num_classes), one Adam step per batch.
  stargan     StarGAN's generator and critic: one critic step (WGAN loss, class loss on real images,
              gradient penalty) and one generator step (adversarial, target class, cycle L1) per batch.

It needs only torch and numpy, in a venv of its own (not the project's):
  python3 -m venv .venv-torch && .venv-torch/bin/pip install torch==2.13.0 numpy
  .venv-torch/bin/python experiments/torch_peers.py classifier --batch_size 64 --image_size 64 --steps 20
  .venv-torch/bin/python experiments/torch_peers.py stargan --batch_size 16 --image_size 64 --conv_dim 64 \
      --repeat_num 6 --d_repeat_num 5 --steps 5
Prints one JSON line (what, batch_size, image_size, params, img_per_s, threads, torch).
"""

import argparse
import json
import time

import torch
from torch import nn
from torch.nn import functional as F


def paper_cnn(num_classes, image_size):
  side = (((image_size - 4) // 2 - 2) // 2 - 2) // 2  # conv, conv, pool, conv, pool, conv, pool
  return nn.Sequential(
    nn.Conv2d(1, 32, 3),
    nn.ReLU(),
    nn.Conv2d(32, 64, 3),
    nn.ReLU(),
    nn.MaxPool2d(2),
    nn.Dropout(0.25),
    nn.Conv2d(64, 128, 3),
    nn.ReLU(),
    nn.MaxPool2d(2),
    nn.Conv2d(128, 128, 3),
    nn.ReLU(),
    nn.MaxPool2d(2),
    nn.Dropout(0.25),
    nn.Flatten(),
    nn.Linear(128 * side * side, 1024),
    nn.ReLU(),
    nn.Dropout(0.5),
    nn.Linear(1024, num_classes),
  )


def _norm_relu(c):
  return [nn.InstanceNorm2d(c, affine=True), nn.ReLU(inplace=True)]


class Residual(nn.Module):
  def __init__(self, c):
    super().__init__()
    self.body = nn.Sequential(
      nn.Conv2d(c, c, 3, 1, 1, bias=False),
      *_norm_relu(c),
      nn.Conv2d(c, c, 3, 1, 1, bias=False),
      nn.InstanceNorm2d(c, affine=True),
    )

  def forward(self, x):
    return x + self.body(x)


class Generator(nn.Module):
  def __init__(self, conv_dim, c_dim, repeat_num):
    super().__init__()
    c = conv_dim
    layers = [nn.Conv2d(1 + c_dim, c, 7, 1, 3, bias=False), *_norm_relu(c)]
    for _ in range(2):
      layers += [nn.Conv2d(c, 2 * c, 4, 2, 1, bias=False), *_norm_relu(2 * c)]
      c *= 2
    layers += [Residual(c) for _ in range(repeat_num)]
    for _ in range(2):
      layers += [nn.ConvTranspose2d(c, c // 2, 4, 2, 1, bias=False), *_norm_relu(c // 2)]
      c //= 2
    self.net = nn.Sequential(*layers, nn.Conv2d(c, 1, 7, 1, 3, bias=False), nn.Tanh())

  def forward(self, x, c):
    return self.net(torch.cat([x, c[:, :, None, None].expand(-1, -1, *x.shape[2:])], 1))


class Critic(nn.Module):
  def __init__(self, image_size, conv_dim, c_dim, repeat_num):
    super().__init__()
    c, layers = conv_dim, [nn.Conv2d(1, conv_dim, 4, 2, 1), nn.LeakyReLU(0.01)]
    for _ in range(1, repeat_num):
      layers += [nn.Conv2d(c, 2 * c, 4, 2, 1), nn.LeakyReLU(0.01)]
      c *= 2
    self.net = nn.Sequential(*layers)
    self.src = nn.Conv2d(c, 1, 3, 1, 1, bias=False)
    self.cls = nn.Conv2d(c, c_dim, image_size // 2**repeat_num, bias=False)

  def forward(self, x):
    h = self.net(x)
    return self.src(h), self.cls(h).flatten(1)


def count(*modules):
  return sum(p.numel() for m in modules for p in m.parameters())


def classifier_step(a):
  model = paper_cnn(a.num_classes, a.image_size)
  opt = torch.optim.Adam(model.parameters(), 1e-4)
  x = torch.rand(a.batch_size, 1, a.image_size, a.image_size)
  y = torch.randint(0, a.num_classes, (a.batch_size,))

  def step():
    opt.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()
    opt.step()

  return step, count(model)


def stargan_step(a):
  g, d = Generator(a.conv_dim, a.c_dim, a.repeat_num), Critic(a.image_size, a.conv_dim, a.c_dim, a.d_repeat_num)
  g_opt = torch.optim.Adam(g.parameters(), 1e-4, betas=(0.5, 0.999))
  d_opt = torch.optim.Adam(d.parameters(), 1e-4, betas=(0.5, 0.999))
  x = torch.rand(a.batch_size, 1, a.image_size, a.image_size) * 2 - 1
  label, target = (torch.randint(0, a.c_dim, (a.batch_size,)) for _ in range(2))
  c_org, c_trg = F.one_hot(label, a.c_dim).float(), F.one_hot(target, a.c_dim).float()

  def step():
    src, cls = d(x)
    fake = g(x, c_trg).detach()
    alpha = torch.rand(a.batch_size, 1, 1, 1)
    x_hat = (alpha * x + (1 - alpha) * fake).requires_grad_(True)
    grad = torch.autograd.grad(d(x_hat)[0].sum(), x_hat, create_graph=True)[0]
    penalty = ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()
    d_loss = -src.mean() + F.cross_entropy(cls, label) + d(fake)[0].mean() + 10 * penalty
    d_opt.zero_grad(set_to_none=True)
    d_loss.backward()
    d_opt.step()
    fake = g(x, c_trg)
    src, cls = d(fake)
    g_loss = -src.mean() + F.cross_entropy(cls, target) + 10 * (x - g(fake, c_org)).abs().mean()
    g_opt.zero_grad(set_to_none=True)
    g_loss.backward()
    g_opt.step()

  return step, count(g, d)


def main():
  p = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
  p.add_argument('what', choices=['classifier', 'stargan'])
  for name, default in (
    ('batch_size', 64),
    ('image_size', 64),
    ('num_classes', 6),
    ('c_dim', 7),
    ('conv_dim', 64),
    ('repeat_num', 6),
    ('d_repeat_num', 5),
    ('steps', 20),
    ('warmup', 3),
    ('threads', 0),
  ):
    p.add_argument(f'--{name}', type=int, default=default)
  a = p.parse_args()
  if a.threads:
    torch.set_num_threads(a.threads)
  torch.manual_seed(0)
  step, params = (classifier_step if a.what == 'classifier' else stargan_step)(a)
  for _ in range(a.warmup):
    step()
  start = time.perf_counter()
  for _ in range(a.steps):
    step()
  seconds = time.perf_counter() - start
  print(
    json.dumps(
      {
        'peer': 'torch',
        'what': a.what,
        'batch_size': a.batch_size,
        'image_size': a.image_size,
        'params': params,
        'img_per_s': a.steps * a.batch_size / seconds,
        'threads': torch.get_num_threads(),
        'torch': torch.__version__,
      }
    )
  )


if __name__ == '__main__':
  main()
