"""gpu-broker: one per node; leases its GPUs (or CPU slots) through a NATS KV bucket.

Imports nothing here: `digits_gpu_broker.nvml` must load on a bare GPU host with pynvml alone.
"""
