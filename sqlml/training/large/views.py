"""Where a shard's tensors point: its host buffer or a device slot, and its optimizer state with it.

A spilled shard's parameters, buffers and optimizer state are views of one flat byte
buffer; moving the shard means copying the buffer and re-pointing the tensors (``.data``
for weights, the optimizer's state dict for moments). Views are made once per (shard,
place) and reused. Optimizer state appears lazily (at the first step, or from a
checkpoint) and is adopted into the buffer the first time it is seen.
"""

from __future__ import annotations

from sqlml.errors import TrainingError
from sqlml.training.large.layers import pack_entries
from sqlml.training.large.optimizers import per_param_state


class ShardViews:
    """Mixed into ``SpillTrainer``: needs ``shards``, ``layouts``, ``optimizers``, ``store``,
    ``optimizer_spec`` and the two caches ``_tensor_lists`` and ``_view_cache``."""

    # -- pointing a shard's tensors at a flat buffer --------------------------------------
    def _tensors(self, i: int):
        """The shard's parameters then buffers (the order of its layout)."""
        cached = self._tensor_lists.get(i)
        if cached is None:
            shard = self.shards[i]
            cached = self._tensor_lists[i] = list(shard.parameters()) + list(shard.buffers())
        return list(cached)

    def _views(self, i: int, flat, key, with_state: bool):
        """Shard ``i``'s weight (and state) views into ``flat``, made once per (shard, place)."""
        layout = self.layouts[i]
        cache_key = (i, key, len(layout.state) if with_state else -1)
        views = self._view_cache.get(cache_key)
        if views is None:
            weights = [entry.view(flat) for entry in layout.weights]
            state = [entry.view(flat) for _, _, entry in layout.state] if with_state else []
            views = self._view_cache[cache_key] = (weights, state)
        return views

    def _point(self, i: int, flat, with_state: bool = True, key=None) -> None:
        weights, state_views = self._views(i, flat, key if key is not None else ("host", id(flat)), with_state)
        for t, view in zip(self._tensors(i), weights):
            t.data = view
        if with_state and self.optimizers[i] is not None:
            params = self._tensor_lists[i]
            state = self.optimizers[i].state
            for (index, key_, _), view in zip(self.layouts[i].state, state_views):
                state[params[index]][key_] = view

    def _adopt_weights(self, i: int) -> None:
        """Copy the shard's tensors into its host buffer and make them views of it."""
        import torch

        flat = self.store[i]
        with torch.no_grad():
            for t, entry in zip(self._tensors(i), self.layouts[i].weights):
                entry.view(flat).copy_(t.data)
                t.data = entry.view(flat)

    def _adopt_state(self, i: int, flat) -> None:
        """Move optimizer state tensors that live elsewhere (new after a first step, or just
        loaded from a checkpoint) into ``flat`` (a slot or the host buffer), fixing the layout
        the first time each one appears."""
        import torch

        opt, layout = self.optimizers[i], self.layouts[i]
        known = {(index, key): entry for index, key, entry in layout.state}
        params = list(self.shards[i].parameters())
        fresh = []
        for index, p in enumerate(params):
            for key, value in per_param_state(opt, p):
                entry = known.get((index, key))
                if entry is None:
                    fresh.append((index, key, value))
                elif value.data_ptr() != entry.view(flat).data_ptr():
                    with torch.no_grad():
                        entry.view(flat).copy_(value)
                    opt.state[p][key] = entry.view(flat)
        if not fresh:
            return
        start = max([layout.weights_bytes] + [e.offset + e.nbytes for e in known.values()])
        entries, end = pack_entries([v for _, _, v in fresh], start)
        if end > layout.total_bytes:
            raise TrainingError(
                f"the {self.optimizer_spec.name} optimizer keeps more state than reserved for shard {i}"
            )
        for (index, key, value), entry in zip(fresh, entries):
            with torch.no_grad():
                entry.view(flat).copy_(value)
            opt.state[params[index]][key] = entry.view(flat)
            layout.state.append((index, key, entry))
