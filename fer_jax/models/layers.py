"""Layers shared by the models, with a choice of how a convolution is lowered.

Every choice computes exactly the same function with the same parameters (kernels stored HWIO /
`(kh, kw, in, out)` like `nn.Conv` / `nn.ConvTranspose`, under the same module names), so checkpoints do not
depend on it:

  impl='xla'      `lax.conv_general_dilated` / `lax.conv_transpose` as written (what GPUs and TPUs want).
  impl='stride1'  every conv rewritten as stride-1 `lax` convs (below). XLA:CPU lowers the input gradient
                  of a strided or transposed conv to an lhs-dilated conv 10-20x slower than a plain one
                  (StarGAN's x2 upsample: 1.5 s vs 0.1 s forward + backward at batch 16).
  impl='im2col'   the same rewrites onto matmuls (the k*k shifted views concatenated, one dot). For a
                  network differentiated twice (a critic's gradient penalty): XLA:CPU lowers the second-
                  order terms of a conv to slow convolutions (StarGAN's critic, per strided layer, 2-20x
                  slower than im2col), its dots stay fast.

The rewrites:
  stride 2, even kernel:    space-to-depth (2x2 pixels -> 4x channels) turns it into a stride-1 conv with a
                            (k/2 x k/2) kernel: same FLOPs, no dilation anywhere in forward or backward.
  transposed, k=4 s=2 p=2:  (StarGAN's x2 upsample, PyTorch's ConvTranspose2d(4, 2, 1)) four stride-1 2x2
                            convs, one per output phase, interleaved.

XLA:CPU's stride-1 conv is fast only with its Eigen kernel, which `parallel.compiler_options` selects for
every program (see there).
"""

import flax.linen as nn
import jax
from jax import lax
import jax.numpy as jnp
import numpy as np

_DN = ('NHWC', 'HWIO', 'NHWC')
IMPLS = ('xla', 'stride1', 'im2col')
CONV_IMPLS = ('cpu', 'xla')  # a model's `conv_impl`; layer_impl maps it to one of IMPLS


def _explicit(padding, kh, kw):
  """'VALID' | 'SAME' (stride-1 semantics) | int | ((top, bottom), (left, right)) -> explicit pairs."""
  if padding == 'VALID':
    return ((0, 0), (0, 0))
  if padding == 'SAME':  # lax's convention: the extra row of an even kernel goes at the end
    return (((kh - 1) // 2, kh // 2), ((kw - 1) // 2, kw // 2))
  if isinstance(padding, int):
    return ((padding, padding), (padding, padding))
  return tuple((int(lo), int(hi)) for lo, hi in padding)


def _pad(x, pads):
  return jnp.pad(x, ((0, 0), *pads, (0, 0))) if any(p for pair in pads for p in pair) else x


def conv_xla(x, kernel, padding='VALID', stride=1):
  pads = 'SAME' if padding == 'SAME' else _explicit(padding, *kernel.shape[:2])
  return lax.conv_general_dilated(x, kernel, (stride, stride), pads, dimension_numbers=_DN)


def conv_transpose_xla(x, kernel, padding=((2, 2), (2, 2)), stride=2):
  return lax.conv_transpose(x, kernel, (stride, stride), padding, dimension_numbers=_DN)


def conv_im2col(x, kernel, padding='VALID'):
  """Stride-1 convolution NHWC x HWIO as one matmul over the k*k shifted views."""
  kh, kw, cin, cout = kernel.shape
  x = _pad(x, _explicit(padding, kh, kw))
  h, w = x.shape[1] - kh + 1, x.shape[2] - kw + 1
  if kh == kw == 1:
    return jnp.einsum('bhwc,co->bhwo', x, kernel[0, 0])
  patches = jnp.concatenate([x[:, i : i + h, j : j + w, :] for i in range(kh) for j in range(kw)], axis=-1)
  return jnp.einsum('bhwk,ko->bhwo', patches, kernel.reshape(kh * kw * cin, cout))


def conv_stride2_s2d(x, kernel, padding='VALID', stride1=conv_xla):
  """Stride-2 convolution with an even kernel, as space-to-depth + a stride-1 (k/2 x k/2) conv `stride1`."""
  kh, kw, cin, cout = kernel.shape
  if kh % 2 or kw % 2:
    raise ValueError(f'conv_stride2_s2d needs an even kernel, got {kh}x{kw}')
  x = _pad(x, _explicit(padding, kh, kw))
  n, hp, wp, _ = x.shape
  oh, ow = (hp - kh) // 2 + 1, (wp - kw) // 2 + 1
  hc, wc = 2 * oh + kh - 2, 2 * ow + kw - 2  # the rows/columns the strided windows reach (even)
  x = x[:, :hc, :wc]
  s = x.reshape(n, hc // 2, 2, wc // 2, 2, cin).transpose(0, 1, 3, 2, 4, 5).reshape(n, hc // 2, wc // 2, 4 * cin)
  k = kernel.reshape(kh // 2, 2, kw // 2, 2, cin, cout).transpose(0, 2, 1, 3, 4, 5)
  return stride1(s, k.reshape(kh // 2, kw // 2, 4 * cin, cout), 'VALID')


# For ConvTranspose(k=4, s=2, padding 2), written polyphase: output row 2m+s takes input rows m-1+u
# (u = s, s+1 of the input padded by 1) through kernel row _PHASE_TAP[s][u]. Each of the four output phases
# (s, t) is then a stride-1 2x2 conv of a shifted view, and the phases interleave into the output.
_PHASE_TAP = ((0, 2, None), (None, 1, 3))


def conv_transpose_x2_phases(x, kernel, stride1=conv_xla):
  """`lax.conv_transpose(x, kernel, (2, 2), ((2, 2), (2, 2)))` for a 4x4 HWIO kernel, as four 2x2 `stride1`
  convs: output 2H x 2W."""
  n, h, w, _ = x.shape
  if kernel.shape[:2] != (4, 4):
    raise ValueError(f'conv_transpose_x2_phases needs a 4x4 kernel, got {kernel.shape[:2]}')
  xp = _pad(x, ((1, 1), (1, 1)))
  rows = []
  for s in range(2):
    cols = []
    for t in range(2):
      k = jnp.stack(
        [jnp.stack([kernel[_PHASE_TAP[s][s + u], _PHASE_TAP[t][t + v]] for v in range(2)]) for u in range(2)]
      )
      cols.append(stride1(xp[:, s : s + h + 1, t : t + w + 1], k, 'VALID'))
    rows.append(jnp.stack(cols, 3))  # [n, h, w, t, c]
  return jnp.stack(rows, 2).reshape(n, 2 * h, 2 * w, kernel.shape[-1])  # [n, h, s, w, t, c]


def max_pool_2x2(x):
  """2x2 stride-2 max pool (VALID, so an odd side loses its last row/column) as a reshape and a max.

  `nn.max_pool` lowers to reduce-window, whose gradient (select-and-scatter) XLA:CPU expands into four
  full-size iotas and a scatter: ~40% of the classifier's step on this CPU. A max over a reshaped axis has
  an elementwise gradient. The forward values are identical; the gradients differ only on exact ties inside
  a window, which this splits equally where select-and-scatter picks the first (after a ReLU the common tie
  is at 0, where both give 0).
  """
  n, h, w, c = x.shape
  x = x[:, : h // 2 * 2, : w // 2 * 2]
  return x.reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


def layer_impl(conv_impl, differentiated_twice=False):
  """A model's `conv_impl` ('xla' | 'cpu') -> its layers' `impl`: on CPU, stride-1 convs, or matmuls for a
  network differentiated twice."""
  if conv_impl not in CONV_IMPLS:
    raise ValueError(f'unknown conv_impl {conv_impl!r}; expected one of {", ".join(CONV_IMPLS)}')
  return 'xla' if conv_impl == 'xla' else 'im2col' if differentiated_twice else 'stride1'


def _stride1(impl):
  if impl not in IMPLS:
    raise ValueError(f'unknown conv impl {impl!r}; expected one of {", ".join(IMPLS)}')
  return conv_im2col if impl == 'im2col' else conv_xla


class Conv(nn.Module):
  """2-D convolution, stride 1 or 2; parameters named and shaped like `nn.Conv` (HWIO kernel, bias)."""

  features: int
  kernel_size: tuple = (3, 3)
  strides: int = 1
  padding: object = 'VALID'  # 'VALID' | 'SAME' | int | ((top, bottom), (left, right))
  use_bias: bool = True
  impl: str = 'xla'  # one of IMPLS
  dtype: jnp.dtype = jnp.float32
  kernel_init: object = nn.initializers.lecun_normal()

  @nn.compact
  def __call__(self, x):
    stride1 = _stride1(self.impl)
    kernel = self.param('kernel', self.kernel_init, (*self.kernel_size, x.shape[-1], self.features))
    bias = self.param('bias', nn.initializers.zeros, (self.features,)) if self.use_bias else None
    x, kernel = x.astype(self.dtype), kernel.astype(self.dtype)
    even = self.kernel_size[0] % 2 == 0 and self.kernel_size[1] % 2 == 0
    if self.impl != 'xla' and self.strides == 1:
      y = stride1(x, kernel, self.padding)
    elif self.impl != 'xla' and self.strides == 2 and even and self.padding != 'SAME':
      y = conv_stride2_s2d(x, kernel, self.padding, stride1)
    else:  # also the fallback for shapes without a rewrite
      y = conv_xla(x, kernel, self.padding, self.strides)
    return y if bias is None else add_bias(y, bias)


class ConvTranspose(nn.Module):
  """x2 transposed conv, 4x4 kernel, padding 2 (PyTorch's ConvTranspose2d(4, 2, 1)); params like nn.ConvTranspose."""

  features: int
  use_bias: bool = True
  impl: str = 'xla'
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    stride1 = _stride1(self.impl)
    kernel = self.param('kernel', nn.initializers.lecun_normal(), (4, 4, x.shape[-1], self.features))
    x, kernel = x.astype(self.dtype), kernel.astype(self.dtype)
    y = conv_transpose_xla(x, kernel) if self.impl == 'xla' else conv_transpose_x2_phases(x, kernel, stride1)
    if self.use_bias:
      y = add_bias(y, self.param('bias', nn.initializers.zeros, (self.features,)))
    return y


def add_bias(y, bias):
  """y + bias added in float32 and returned in y's dtype: the bias's gradient sums over batch x H x W (thousands of
  terms), which would accumulate in bfloat16 otherwise. With a float32 y it is y + bias."""
  return (y.astype(jnp.float32) + bias.astype(jnp.float32)).astype(y.dtype)


class Dropout(nn.Module):
  """Inverted dropout drawing 8 random bits per element instead of `nn.Dropout`'s 32.

  On CPU the threefry bits behind `nn.Dropout` cost ~14% of the classifier's step; one 32-bit word now
  serves four elements. The keep test `byte >= rate * 256` is exact for rates that are multiples of 1/256
  (the paper's 0.25 and 0.5). Bits come from `jax.random.bits` (threefry), so the mask does not depend on
  how the batch is sharded.
  """

  rate: float
  deterministic: bool = False

  @nn.compact
  def __call__(self, x):
    if self.deterministic or self.rate == 0:
      return x
    threshold = self.rate * 256
    if threshold != int(threshold) or not 0 < threshold < 256:
      raise ValueError(f'Dropout rate {self.rate} is not a multiple of 1/256 in (0, 1)')
    c = x.shape[-1]
    words = jax.random.bits(self.make_rng('dropout'), (*x.shape[:-1], -(-c // 4)), jnp.uint32)
    u8 = lax.bitcast_convert_type(words, jnp.uint8).reshape(*x.shape[:-1], -1)[..., :c]
    return jnp.where(u8 >= int(threshold), x / (1.0 - self.rate), jnp.zeros_like(x))


def count_params(tree):
  """How many numbers a parameter tree holds (the parameter counts compared with the PyTorch peers)."""
  return int(sum(np.prod(np.shape(x), dtype=np.int64) for x in jax.tree.leaves(tree)))
