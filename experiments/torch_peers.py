"""PyTorch peers of our networks, for throughput comparisons on the same machine in the same session.

The same networks at the same shapes as `python -m experiments.benchmark` trains in JAX (the parameter
counts printed by both must agree):
  classifier  the paper's CNN (conv 32, conv 64, pool, dropout, conv 128, pool, conv 128, pool, dropout,
              dense 1024, dropout, num_classes), one Adam step per batch.
  stargan     StarGAN's generator and critic: one critic step (WGAN loss, class loss on real images,
              gradient penalty) and one generator step (adversarial, target class, cycle L1) per batch.
  stylegan    the identity GAN's StyleGAN2-style G and residual D (fer_jax.models.stylegan, same layers, same
              parameter tensors): per step one D step (logistic loss on real images and G's fakes) and one G
              step (non-saturating, back through the same G pass), G's EMA and w_avg; on every r1_every-th
              step (counted from 0, as experiments/benchmark.py) a lazy R1 step first. Adam (0, 0.99), D's lr
              and betas corrected for lazy regularisation, as fer_jax.train.identity_gan.

It needs only torch and numpy, in a venv of its own (not the project's):
  python3 -m venv .venv-torch && .venv-torch/bin/pip install torch==2.13.0 numpy
  .venv-torch/bin/python experiments/torch_peers.py classifier --batch_size 64 --image_size 64 --steps 20
  .venv-torch/bin/python experiments/torch_peers.py stargan --batch_size 16 --image_size 64 --conv_dim 64 \
      --repeat_num 6 --d_repeat_num 5 --steps 5
  .venv-torch/bin/python experiments/torch_peers.py stylegan --batch_size 32 --image_size 32 --steps 32  # quick
  .venv-torch/bin/python experiments/torch_peers.py stylegan --batch_size 32 --image_size 64 --z_dim 512 \
      --w_dim 512 --mapping_layers 8 --channels 256 --max_channels 512 --lr 2e-3 --style_mixing_prob 0.9 \
      --steps 4  # paper
(stylegan's defaults are the quick preset's identity_gan; those flags make the paper preset's.)
Prints one JSON line (what, batch_size, image_size, params, img_per_s, threads, torch; stylegan adds
params_generator, params_discriminator, r1_every).
"""

import argparse
import json
import math
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


# ------------------------------------------------------------------------- stylegan (fer_jax.models.stylegan)
# NCHW; kernels stored as torch lays them out ([out, in, k, k], dense [out, in]): the same tensors as ours
# ([k, k, in, out], [in, out]) transposed, named as ours (module path / kernel, bias, const, noise_strength).

_SQRT2 = math.sqrt(2.0)
_W_AVG_BETA = 0.995


def channels_at(res, image_size, channels, max_channels):
  return int(min(max_channels, channels * (image_size // res)))


def lrelu(x):
  return F.leaky_relu(x, 0.2) * _SQRT2


def _pad1(x, dim):
  return F.pad(x, [0, 0] * (x.ndim - 1 - dim) + [1, 1])


def _up1d(x, dim):
  # Zero-stuff + [1,3,3,1]/4*2 filter, polyphase as shifted adds (as ours).
  n = x.shape[dim]
  xp = _pad1(x, dim)
  even = 0.25 * xp.narrow(dim, 0, n) + 0.75 * x
  odd = 0.75 * x + 0.25 * xp.narrow(dim, 2, n)
  return torch.stack([even, odd], dim + 1).reshape(x.shape[:dim] + (2 * n,) + x.shape[dim + 1 :])


def _down1d(x, dim):
  # [1,3,3,1]/8 filter, stride 2, zero padding 1 each side (as ours).
  n = x.shape[dim]
  xp = _pad1(x, dim)
  taps = [xp[(slice(None),) * dim + (slice(i, i + n - 1, 2),)] for i in range(4)]
  return (taps[0] + 3 * taps[1] + 3 * taps[2] + taps[3]) * 0.125


def upsample2x(x):
  return _up1d(_up1d(x, 2), 3)


def downsample2x(x):
  return _down1d(_down1d(x, 2), 3)


class EqualDense(nn.Module):
  def __init__(self, in_features, features, lr_mul=1.0, bias_init=0.0, use_bias=True):
    super().__init__()
    self.scale, self.lr_mul = lr_mul / math.sqrt(in_features), lr_mul
    self.kernel = nn.Parameter(torch.randn(features, in_features) / lr_mul)
    self.bias = nn.Parameter(torch.full((features,), bias_init / lr_mul)) if use_bias else None

  def forward(self, x):
    return F.linear(x, self.kernel * self.scale, None if self.bias is None else self.bias * self.lr_mul)


class EqualConv(nn.Module):
  def __init__(self, in_ch, features, kernel_size=3, use_bias=True):
    super().__init__()
    self.scale, self.pad = 1.0 / math.sqrt(kernel_size**2 * in_ch), kernel_size // 2
    self.kernel = nn.Parameter(torch.randn(features, in_ch, kernel_size, kernel_size))
    self.bias = nn.Parameter(torch.zeros(features)) if use_bias else None

  def forward(self, x):
    return F.conv2d(x, self.kernel * self.scale, self.bias, padding=self.pad)


class MappingNetwork(nn.Module):
  def __init__(self, z_dim, w_dim, num_layers, lr_mul):
    super().__init__()
    for i in range(num_layers):
      setattr(self, f'fc{i}', EqualDense(z_dim if i == 0 else w_dim, w_dim, lr_mul=lr_mul))
    self.num_layers = num_layers

  def forward(self, z):
    x = z * torch.rsqrt(z.square().mean(-1, keepdim=True) + 1e-8)
    for i in range(self.num_layers):
      x = lrelu(getattr(self, f'fc{i}')(x))
    return x


class ModulatedConv(nn.Module):
  """Fused as ours: scale input channels by the style, one batched conv, demodulate the output."""

  def __init__(self, in_ch, features, w_dim, kernel_size=3, demodulate=True, upsample=False):
    super().__init__()
    self.affine = EqualDense(w_dim, in_ch, bias_init=1.0)
    self.kernel = nn.Parameter(torch.randn(features, in_ch, kernel_size, kernel_size))
    self.scale, self.pad = 1.0 / math.sqrt(kernel_size**2 * in_ch), kernel_size // 2
    self.demodulate, self.upsample = demodulate, upsample

  def forward(self, x, w):
    styles = self.affine(w)  # [B, in]
    weight = self.kernel * self.scale
    if self.upsample:
      x = upsample2x(x)
    y = F.conv2d(x * styles[:, :, None, None], weight, padding=self.pad)
    if self.demodulate:
      wsq = weight.square().sum((2, 3))  # [out, in]
      y = y * torch.rsqrt(styles.square() @ wsq.t() + 1e-8)[:, :, None, None]
    return y


class StyledLayer(nn.Module):
  def __init__(self, in_ch, features, w_dim, upsample=False):
    super().__init__()
    self.conv = ModulatedConv(in_ch, features, w_dim, upsample=upsample)
    self.noise_strength = nn.Parameter(torch.zeros(()))
    self.bias = nn.Parameter(torch.zeros(features))

  def forward(self, x, w):
    y = self.conv(x, w)
    y = y + torch.randn(y.shape[0], 1, *y.shape[2:]) * self.noise_strength
    return lrelu(y + self.bias[:, None, None])


class ToImage(nn.Module):
  def __init__(self, in_ch, w_dim, out_channels=1):
    super().__init__()
    self.conv = ModulatedConv(in_ch, out_channels, w_dim, kernel_size=1, demodulate=False)
    self.bias = nn.Parameter(torch.zeros(out_channels))

  def forward(self, x, w):
    return self.conv(x, w) + self.bias[:, None, None]


def num_ws(image_size):
  return 1 + 2 * (int(round(math.log2(image_size))) - 2) + 1


class SynthesisNetwork(nn.Module):
  def __init__(self, image_size, channels, max_channels, w_dim):
    super().__init__()
    ch = lambda r: channels_at(r, image_size, channels, max_channels)
    self.image_size = image_size
    self.const = nn.Parameter(torch.randn(ch(4), 4, 4))
    self.b4_conv = StyledLayer(ch(4), ch(4), w_dim)
    self.b4_toimg = ToImage(ch(4), w_dim)
    res = 8
    while res <= image_size:
      setattr(self, f'b{res}_conv0', StyledLayer(ch(res // 2), ch(res), w_dim, upsample=True))
      setattr(self, f'b{res}_conv1', StyledLayer(ch(res), ch(res), w_dim))
      setattr(self, f'b{res}_toimg', ToImage(ch(res), w_dim))
      res *= 2

  def forward(self, ws):
    x = self.const.expand(ws.shape[0], *self.const.shape)
    x = self.b4_conv(x, ws[:, 0])
    img = self.b4_toimg(x, ws[:, 1])
    i, res = 1, 8
    while res <= self.image_size:
      x = getattr(self, f'b{res}_conv0')(x, ws[:, i])
      x = getattr(self, f'b{res}_conv1')(x, ws[:, i + 1])
      img = upsample2x(img) + getattr(self, f'b{res}_toimg')(x, ws[:, i + 2])
      i, res = i + 2, res * 2
    return img


class StyleGenerator(nn.Module):
  def __init__(self, image_size, channels, max_channels, z_dim, w_dim, mapping_layers, mapping_lr_mul):
    super().__init__()
    self.num_ws = num_ws(image_size)
    self.mapping_net = MappingNetwork(z_dim, w_dim, mapping_layers, mapping_lr_mul)
    self.synthesis_net = SynthesisNetwork(image_size, channels, max_channels, w_dim)

  def make_ws(self, z, z2, mixing_prob):
    """Mapping + per-sample style mixing after a random cutoff, as our `_make_ws`."""
    w = self.mapping_net(z)
    ws = w[:, None].expand(w.shape[0], self.num_ws, w.shape[-1])
    if mixing_prob > 0:
      w2 = self.mapping_net(z2)
      cutoff = torch.randint(1, self.num_ws, (w.shape[0],))
      cutoff = torch.where(torch.rand(w.shape[0]) < mixing_prob, cutoff, self.num_ws)
      ws = torch.where((torch.arange(self.num_ws)[None] < cutoff[:, None])[..., None], ws, w2[:, None])
    return ws, w


def minibatch_stddev(x, group_size=4):
  b, c, h, w = x.shape
  g = math.gcd(group_size, b)
  y = torch.sqrt(x.reshape(b // g, g, c, h, w).var(1, unbiased=False) + 1e-8).mean((1, 2, 3))  # [b/g]
  return torch.cat([x, y.repeat_interleave(g)[:, None, None, None].expand(b, 1, h, w)], 1)


class DBlock(nn.Module):
  def __init__(self, in_ch, features):
    super().__init__()
    self.skip = EqualConv(in_ch, features, 1, use_bias=False)
    self.conv0 = EqualConv(in_ch, in_ch)
    self.conv1 = EqualConv(in_ch, features)

  def forward(self, x):
    skip = self.skip(downsample2x(x))
    y = lrelu(self.conv1(downsample2x(lrelu(self.conv0(x)))))
    return (y + skip) * (1.0 / _SQRT2)


class StyleDiscriminator(nn.Module):
  def __init__(self, image_size, channels, max_channels, mbstd_group=4):
    super().__init__()
    ch = lambda r: channels_at(r, image_size, channels, max_channels)
    self.image_size, self.mbstd_group = image_size, mbstd_group
    self.fromimg = EqualConv(1, ch(image_size), 1)
    res = image_size
    while res > 4:
      setattr(self, f'b{res}', DBlock(ch(res), ch(res // 2)))
      res //= 2
    self.b4_conv = EqualConv(ch(4) + 1, ch(4))
    self.b4_fc = EqualDense(ch(4) * 16, ch(4))
    self.out = EqualDense(ch(4), 1)

  def forward(self, img):
    x = lrelu(self.fromimg(img))
    res = self.image_size
    while res > 4:
      x = getattr(self, f'b{res}')(x)
      res //= 2
    x = lrelu(self.b4_conv(minibatch_stddev(x, self.mbstd_group)))
    return self.out(lrelu(self.b4_fc(x.flatten(1))))[:, 0]


def stylegan_step(a):
  """R1 (on every r1_every-th step) + D + G step of fer_jax.train.identity_gan (r1_step, train_step)."""
  g = StyleGenerator(a.image_size, a.channels, a.max_channels, a.z_dim, a.w_dim, a.mapping_layers, a.mapping_lr_mul)
  d = StyleDiscriminator(a.image_size, a.channels, a.max_channels)
  b1, b2 = 0.0, 0.99
  c = a.r1_every / (a.r1_every + 1)  # lazy regularisation: D takes r1_every + 1 steps per r1_every
  g_opt = torch.optim.Adam(g.parameters(), a.lr, betas=(b1, b2), eps=1e-8)
  d_opt = torch.optim.Adam(d.parameters(), a.lr * c, betas=(b1**c, b2**c), eps=1e-8)
  g_params = list(g.parameters())
  g_ema = [p.detach().clone() for p in g_params]
  w_avg = torch.zeros(a.w_dim)
  ema_beta = 0.5 ** (a.batch_size / max(a.ema_half_life_images, 1e-8))
  r1_weight = 0.5 * a.r1_gamma * a.r1_every
  real = torch.randint(0, 256, (a.batch_size, 1, a.image_size, a.image_size)).float() / 127.5 - 1

  def r1():
    x = real.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(d(x).sum(), x, create_graph=True)
    loss = r1_weight * grad.square().sum((1, 2, 3)).mean()
    d_opt.zero_grad(set_to_none=True)
    loss.backward()
    d_opt.step()

  def train():
    z, z2 = torch.randn(a.batch_size, a.z_dim), torch.randn(a.batch_size, a.z_dim)
    ws, w = g.make_ws(z, z2, a.style_mixing_prob)
    fake = g.synthesis_net(ws)  # one G pass for both updates, as ours
    d_loss = F.softplus(d(fake.detach())).mean() + F.softplus(-d(real)).mean()
    d_opt.zero_grad(set_to_none=True)
    d_loss.backward()
    d_opt.step()
    d.requires_grad_(False)  # G's step needs only d(logits)/d(image), as ours
    g_loss = F.softplus(-d(fake)).mean()
    g_opt.zero_grad(set_to_none=True)
    g_loss.backward()
    g_opt.step()
    d.requires_grad_(True)
    with torch.no_grad():
      torch._foreach_lerp_(g_ema, g_params, 1.0 - ema_beta)
      w_mean = w.mean(0)
      w_avg.copy_(w_mean + (w_avg - w_mean) * _W_AVG_BETA)

  def step(i):
    if i % a.r1_every == 0:
      r1()
    train()

  return step, {
    'params': count(g, d),
    'params_generator': count(g),
    'params_discriminator': count(d),
    'r1_every': a.r1_every,
  }


def classifier_step(a):
  model = paper_cnn(a.num_classes, a.image_size)
  opt = torch.optim.Adam(model.parameters(), 1e-4)
  x = torch.rand(a.batch_size, 1, a.image_size, a.image_size)
  y = torch.randint(0, a.num_classes, (a.batch_size,))

  def step(_):
    opt.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()
    opt.step()

  return step, {'params': count(model)}


def stargan_step(a):
  g, d = Generator(a.conv_dim, a.c_dim, a.repeat_num), Critic(a.image_size, a.conv_dim, a.c_dim, a.d_repeat_num)
  g_opt = torch.optim.Adam(g.parameters(), 1e-4, betas=(0.5, 0.999))
  d_opt = torch.optim.Adam(d.parameters(), 1e-4, betas=(0.5, 0.999))
  x = torch.rand(a.batch_size, 1, a.image_size, a.image_size) * 2 - 1
  label, target = (torch.randint(0, a.c_dim, (a.batch_size,)) for _ in range(2))
  c_org, c_trg = F.one_hot(label, a.c_dim).float(), F.one_hot(target, a.c_dim).float()

  def step(_):
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

  return step, {'params': count(g, d)}


PEERS = {'classifier': classifier_step, 'stargan': stargan_step, 'stylegan': stylegan_step}
# Defaults of batch_size / image_size per peer (stylegan: the quick preset's identity GAN).
SHAPE_DEFAULTS = {'stylegan': (32, 32)}


def main():
  p = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
  p.add_argument('what', choices=list(PEERS))
  for name, default in (
    ('batch_size', None),
    ('image_size', None),
    ('num_classes', 6),
    ('c_dim', 7),
    ('conv_dim', 64),
    ('repeat_num', 6),
    ('d_repeat_num', 5),
    ('z_dim', 64),
    ('w_dim', 64),
    ('mapping_layers', 4),
    ('channels', 16),
    ('max_channels', 64),
    ('r1_every', 16),
    ('steps', 20),
    ('warmup', 3),
    ('threads', 0),
  ):
    p.add_argument(f'--{name}', type=int, default=default)
  for name, default in (
    ('lr', 4e-3),
    ('r1_gamma', 0.1),
    ('mapping_lr_mul', 0.01),
    ('style_mixing_prob', 0.0),
    ('ema_half_life_images', 2000.0),
  ):
    p.add_argument(f'--{name}', type=float, default=default)
  a = p.parse_args()
  batch_size, image_size = SHAPE_DEFAULTS.get(a.what, (64, 64))
  a.batch_size = a.batch_size or batch_size
  a.image_size = a.image_size or image_size
  if a.threads:
    torch.set_num_threads(a.threads)
  torch.manual_seed(0)
  step, info = PEERS[a.what](a)
  for i in range(a.warmup):
    step(i)
  start = time.perf_counter()
  for i in range(a.steps):  # stylegan: R1 on steps 0, r1_every, ... as experiments/benchmark.py
    step(i)
  seconds = time.perf_counter() - start
  print(
    json.dumps(
      {
        'peer': 'torch',
        'what': a.what,
        'batch_size': a.batch_size,
        'image_size': a.image_size,
        'steps': a.steps,
        **info,
        'img_per_s': a.steps * a.batch_size / seconds,
        'threads': torch.get_num_threads(),
        'torch': torch.__version__,
      }
    )
  )


if __name__ == '__main__':
  main()
