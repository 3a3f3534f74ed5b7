"""fer-jax: how far can GAN-generated faces help a facial-expression classifier?"""

__version__ = '0.1.0'
