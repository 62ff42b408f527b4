"""A cycle-consistent pix2pix: both directions trained together on the pairs.

CycleGAN (Zhu et al. 2017) learns two mappings from unpaired images and keeps them honest
with cycle consistency: F(G(x)) = x and G(F(y)) = y. SCG (2023), the best published
CUHK figures, is a semi-supervised CycleGAN. Here the pairs are known, so each direction
also has pix2pix's paired L1 (and the shared reconstruction levers): the cycle terms then
ask the task's generator G to keep what is needed to get the input back, which is the
person's identity as much as the style.

Networks (unet_gan's builders, its settings): G: input -> target and F: target -> input,
U-Nets; D_y judges (input, target-or-G(input)) pairs and D_x (target, input-or-F(target))
pairs, 70x70 PatchGANs.

Losses (BCE from logits; rec: the L1 term with the reconstruction levers, see unet_gan):
- G and F: BCE(1, D_y(x, G(x))) + BCE(1, D_x(y, F(y)))
  + lambda_l1 x (rec(y, G(x)) + rec(x, F(y)))
  + lambda_cycle x (|F(G(x)) - x|_1 + |G(F(y)) - y|_1);
- D_y and D_x: pix2pix's 0.5 x (BCE(1, real) + BCE(0, fake)), each on its own pairs.
One Adam for both generators, one for both discriminators (unet_gan's settings).

Metrics: unet_gan's four (``loss``: the generators' total, ``g_gan_loss``, ``g_l1_loss``:
the task's direction, |y - G(x)|, ``d_loss``: both discriminators) plus ``cycle_loss``.
The saved predictor is G alone (``predictor()``), so the model serves its task as unet_gan
does. The train stage runs per task, so f2s and s2f each train a pair (the s2f run's G is
a second f2s run's F): twice the work of one joint training, kept so that every model
keeps one contract (one model x task per stage).
"""

from __future__ import annotations

import keras
from keras import ops

from facesketch.models.settings import CycleGan as CycleGanSettings
from facesketch.models.spec import ModelSpec
from facesketch.models.unet_gan import Pix2Pix, compile_model, discriminator, generator


class CycleGan(Pix2Pix):
    """Pix2Pix's two-player step (both backends) with a player pair on each side."""

    def __init__(self, image_size: int, cfg: dict, **kwargs):
        super().__init__(image_size, cfg, name="cycle_gan", **kwargs)
        self.lambda_cycle = cfg["lambda_cycle"]
        self.backward_generator = generator(image_size, cfg, name="backward_generator")
        self.backward_discriminator = discriminator(image_size, cfg, name="backward_patchgan")
        self.cycle_tracker = keras.metrics.Mean(name="cycle_loss")

    def networks(self) -> list[keras.Model]:
        return [self.generator, self.backward_generator, self.discriminator, self.backward_discriminator]

    @property
    def g_variables(self) -> list:
        return self.generator.trainable_variables + self.backward_generator.trainable_variables

    @property
    def d_variables(self) -> list:
        return self.discriminator.trainable_variables + self.backward_discriminator.trainable_variables

    @property
    def metrics(self):
        return [*super().metrics, self.cycle_tracker]

    def training_passes(self):
        """Forward passes of one step: each generator on a real image and on the other's output,
        each discriminator on its real and fake pairs."""
        return [(self.generator, 2), (self.backward_generator, 2), (self.discriminator, 2),
                (self.backward_discriminator, 2)]

    def _gan_losses(self, x, y, training: bool):
        """(generators' total, their GAN term, the task's L1, discriminators' loss, cycle term)."""
        fake_y = self.generator(x, training=training)
        fake_x = self.backward_generator(y, training=training)
        logits = {  # (real, fake) per discriminator
            "y": (self.discriminator([x, y], training=training), self.discriminator([x, fake_y], training=training)),
            "x": (self.backward_discriminator([y, x], training=training),
                  self.backward_discriminator([y, fake_x], training=training)),
        }
        g_gan = sum(self.bce(ops.ones_like(fake), fake) for _, fake in logits.values())
        g_l1 = ops.mean(ops.abs(y - fake_y))
        rec = self._reconstruction(y, fake_y, g_l1) + self._reconstruction(x, fake_x, ops.mean(ops.abs(x - fake_x)))
        cycle = (ops.mean(ops.abs(self.backward_generator(fake_y, training=training) - x))
                 + ops.mean(ops.abs(self.generator(fake_x, training=training) - y)))
        g_total = g_gan + self.lambda_l1 * rec + self.lambda_cycle * cycle
        d_loss = sum(0.5 * (self.bce(ops.ones_like(real), real) + self.bce(ops.zeros_like(fake), fake))
                     for real, fake in logits.values())
        return g_total, g_gan, g_l1, d_loss, cycle


def build(image_size: int, cfg: dict) -> keras.Model:
    return CycleGan(image_size, cfg)


SPEC = ModelSpec(build=build, settings=CycleGanSettings, compile_model=compile_model)
