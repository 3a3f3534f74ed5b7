"""Layers shared by the models, with a choice of how a convolution is lowered.

XLA:CPU lowers a small 3x3 convolution at ~45 GFLOP/s on this class of machine, while the same contraction
written as im2col (the k*k shifted views concatenated on the channel axis, then one matmul) runs through its
much faster dot kernels. `impl='im2col'` computes exactly the same function with the same parameters (the
kernel is stored HWIO like `nn.Conv`), so checkpoints do not depend on the choice; `impl='xla'` keeps
`lax.conv_general_dilated` (what GPUs and TPUs want).
"""
import flax.linen as nn
import jax.numpy as jnp
from jax import lax


def conv_im2col(x, kernel, padding='VALID'):
  """Stride-1 convolution NHWC x HWIO as one matmul over k*k shifted views."""
  kh, kw, cin, cout = kernel.shape
  if padding == 'SAME':
    x = jnp.pad(x, ((0, 0), (kh // 2, (kh - 1) // 2), (kw // 2, (kw - 1) // 2), (0, 0)))
  h, w = x.shape[1] - kh + 1, x.shape[2] - kw + 1
  patches = jnp.concatenate([x[:, i:i + h, j:j + w, :] for i in range(kh) for j in range(kw)], axis=-1)
  return jnp.einsum('bhwk,ko->bhwo', patches, kernel.reshape(kh * kw * cin, cout))


def conv_xla(x, kernel, padding='VALID'):
  return lax.conv_general_dilated(x, kernel, (1, 1), padding, dimension_numbers=('NHWC', 'HWIO', 'NHWC'))


class Conv(nn.Module):
  """Stride-1 2-D convolution with bias; parameters named and shaped like `nn.Conv`."""
  features: int
  kernel_size: tuple = (3, 3)
  padding: str = 'VALID'
  impl: str = 'xla'  # 'xla' | 'im2col'
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    kernel = self.param('kernel', nn.initializers.lecun_normal(),
                        (*self.kernel_size, x.shape[-1], self.features))
    bias = self.param('bias', nn.initializers.zeros, (self.features,))
    x, kernel = x.astype(self.dtype), kernel.astype(self.dtype)
    if self.impl == 'im2col':
      y = conv_im2col(x, kernel, self.padding)
    elif self.impl == 'xla':
      y = conv_xla(x, kernel, self.padding)
    else:
      raise ValueError(f'unknown conv impl {self.impl!r}; expected xla or im2col')
    return y + bias.astype(self.dtype)
