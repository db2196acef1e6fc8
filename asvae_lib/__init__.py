"""asvae_lib: the library the AS-VAE book grows, chapter by chapter.

| module            | what it holds                                         | chapter |
|-------------------|-------------------------------------------------------|---------|
| ``profile``       | the quick/full switch (``ASVAE_PROFILE``)              | all     |
| ``kl``            | 1-D KL on a grid; fitting a Gaussian by each KL        | 1       |
| ``gaussians``     | Gaussian density, entropy, cross-entropy, KL           | 1-4     |
| ``density_ratio`` | Lemma 1: discriminators and their objective (4)        | 2-4     |
| ``gaussian_world``| encoder, decoder, joints, f*, h*, (1), (8)-(11) closed  | 1, 3, 4 |
| ``pairs``, ``flows``, ``models``, ``objectives``, ``trainer``, ``metrics2d``, ``toy2d`` | Part II: the model, its game (12), the trainer, 2-D metrics and experiments | 4-6 |
| ``data``, ``evaluate``, ``image_metrics``, ``plots``, ``train``, ``bench``, ``traversal`` | Part III: image data, NLL/IWAE/bits/dim, FID/IS, grids, the experiments and their CLI, the benchmark, latent walks | 7-10 |
| ``assignments``, ``colab`` | tooling: student versions of the chapters; the Colab badge and first cell | all |
"""
