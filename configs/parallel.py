"""The data-parallel keys every experiment config carries.

- `parallel`: 'none' (one device), 'pmap' (a replica per local device) or
  'sharded' (`jit` over every host's devices); `train.batch_size` is the
  global batch, split evenly over them (`train.eval_batch_size` is rounded
  up to a multiple of the device count).
- `shard_params`: with 'sharded', split large params, masks and optimizer
  moments over the devices instead of replicating them.
- `distributed`: joins a multi-host run before anything else when
  `enabled`; empty fields ('', 0, -1) are read from the cluster (Slurm,
  Open MPI, Cloud TPU) by `jax.distributed.initialize`.
"""

import ml_collections


def add(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Adds the keys, single-device by default, to `config`."""
  config.parallel = "none"
  config.shard_params = False
  config.distributed = dict(
    enabled=False, coordinator_address="", num_processes=0, process_id=-1
  )
  return config
