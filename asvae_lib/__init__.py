"""asvae_lib: the library the AS-VAE book grows, chapter by chapter.

| module            | what it holds                                         | chapter |
|-------------------|-------------------------------------------------------|---------|
| ``profile``       | the quick/full switch (``ASVAE_PROFILE``)              | all     |
| ``kl``            | 1-D KL on a grid; fitting a Gaussian by each KL        | 1       |
| ``gaussians``     | Gaussian density, entropy, cross-entropy, KL           | 1-4     |
| ``density_ratio`` | Lemma 1: discriminators and their objective (4)        | 2-4     |
| ``gaussian_world``| encoder, decoder, joints, f*, h*, (1), (8)-(11) closed  | 1, 3, 4 |
| Part II: ``pairs``, ``flows``, ``models``, ``objectives``, ``trainer``, ``metrics2d``, ``toy2d``
|   the model, its game (12), the trainer, 2-D metrics and experiments          | 4-6     |
| Part III: ``data``, ``evaluate``, ``image_metrics``, ``plots``, ``experiments``, ``train``,
|   ``bench``, ``traversal``: image data, NLL/IWAE/bits/dim, FID/IS, grids, the
|   experiments, their runs and CLI, the benchmark, latent walks                 | 7-10    |
| tooling: ``assignments``, ``colab``, ``notebook_outputs``: student versions,
|   the Colab cell, stored progress bars                                         | all     |
"""
