"""The pieces of a custom JAX ``train_step`` (Keras' JAX trainer is stateless).

Under JAX, ``fit()`` hands ``train_step(state, data)`` the values of the model's variables
(trainable, non-trainable, optimizer, metrics) and takes new values back; the variables
themselves are written only between epochs (``jax_state_sync``). A model whose loss is not
Keras' ``compute_loss`` (the VAE's, the GAN's) runs its loss under a ``StatelessScope``
mapping each variable to its value in ``state``: every layer then reads those values,
and what the forward pass assigns (normalisation statistics, seed generators, counters)
is read back from the scope.
"""

from __future__ import annotations

import keras


def values_after(scope, variables, before):
    """What ``scope`` assigned to ``variables``, or their values ``before`` where it assigned nothing."""
    out = []
    for v, old in zip(variables, before):
        new = scope.get_current_value(v)
        out.append(old if new is None else new)
    return out


def run(model, fn, trainable, non_trainable, extra=()):
    """``fn()`` with ``model``'s variables taking the values ``trainable`` and ``non_trainable``
    (and ``extra``: more (variable, value) pairs, e.g. an optimizer's); returns ``fn``'s result
    and the non-trainable values after it."""
    mapping = [*zip(model.trainable_variables, trainable), *zip(model.non_trainable_variables, non_trainable),
               *extra]
    with keras.StatelessScope(state_mapping=mapping) as scope:
        out = fn()
    return out, values_after(scope, model.non_trainable_variables, non_trainable)


def record(model, metrics_variables, update):
    """``update()`` (which updates ``model.metrics`` and returns the logs) on the metric values given."""
    with keras.StatelessScope(state_mapping=list(zip(model.metrics_variables, metrics_variables))) as scope:
        logs = update()
    return logs, values_after(scope, model.metrics_variables, metrics_variables)


def scale_loss(optimizer, loss, optimizer_values):
    """``optimizer.scale_loss`` (mixed precision's loss scaling; the identity otherwise) on the values given."""
    with keras.StatelessScope(state_mapping=list(zip(optimizer.variables, optimizer_values))):
        return optimizer.scale_loss(loss)
