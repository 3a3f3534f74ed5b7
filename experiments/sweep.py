"""The whole study on one command: data -> GANs -> synthetic sets -> regime x multiple x seed -> report.

  python -m experiments.sweep --config=configs/default.py:quick --workdir=runs/quick \
      [--config.sweep.multiples=0.5,1,2,5 --config.sweep.seeds=0,1,2]

Rerunning the same command resumes; see fer_jax/sweep.py for the layout of the workdir.
"""

from fer_jax import sweep
from fer_jax.infra import cli

if __name__ == '__main__':
  cli.main(sweep.run_sweep)
