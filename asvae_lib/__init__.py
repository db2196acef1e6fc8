"""asvae_lib: the library the AS-VAE book grows, chapter by chapter.

The science is written in the chapters: each module below marked *generated* is the
chapters' ``#@save`` cells, written by ``make library`` (``asvae_lib/book/library.py``);
edit the chapter, not the module. ``tests/test_library.py`` fails when they disagree.

| module            | what it holds                                                   | source        |
|-------------------|-----------------------------------------------------------------|---------------|
| ``gaussians``     | Gaussian density, entropy, cross-entropy, KL, JSD               | chapter 1     |
| ``kl``            | 1-D KL on a grid; fitting a Gaussian by each KL                 | chapter 1     |
| ``density_ratio`` | Lemma 1: the logistic objective (4), discriminators, training   | chapter 2     |
| ``pairs``         | the pairs of ALI (3), f (5), h (6)                              | chapter 3     |
| ``gaussian_world``| the linear-Gaussian world: joints, f*, h*, (1), (8)-(12) exact  | chapters 1, 3, 4 |
| ``objectives``    | the networks' losses: (1), (5), (6), (11), both readings of (12) | chapter 4     |
| ``flows``         | planar flows: forward, log-determinant, inverse                 | chapter 5     |

Hand-written infrastructure: ``profile`` (quick/full), ``models``, ``metrics2d``, ``trainer``,
``toy2d``, ``data``, ``evaluate``, ``image_metrics``, ``plots``, ``experiments``, ``train``,
``traversal``, ``flow_study``, ``sample_quality``. The book's tooling lives in ``asvae_lib.book``.
"""
