"""A simulator configuration whose machine is a small RTL tile (shared by tests)."""

#: A tile machine for a 16x24 relative layer (4 lanes, 2 units, 24 columns).
TILE_CONFIG = {
    "name": "tile-cost",
    "arch": {
        "lanes": 4,
        "decoders": 2,
        "batch": 1,
        "dram": {"bytes_per_cycle": 8, "latency_cycles": 0},
        "buffer": {"bytes": 256, "banks": 2, "bank_bytes_per_cycle": 8},
        "lane_fifo_rows": 2,
        "tile": {"n_cols": 24},
    },
    "defaults": {"format": "relative", "spec": {"r": 4}, "sparsity": 0.8, "quantize": 8},
    "layers": [{"synthetic": "16x24"}],
}
