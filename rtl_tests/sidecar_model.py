"""Reference models of the blocks written from a sidecar alone (its matrices and protocol).

Nothing here imports the project: every width, bit order, matrix, reset and cycle rule
is read from the JSON sidecar ``codesign verilog`` writes next to the Verilog, as an
outside integrator would. For each block kind, :func:`stimulus` draws random input
beats (random segment, plane and tile boundaries, several patches per block, zero
values, ties in the scores) and computes the output beats the protocol's ``function``
says the block must give, and, where the protocol's cycle rule fixes it, the cycles at
full rate (first input handshake to last output handshake, both counted).
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from typing import Any

Item = dict[str, int]


@dataclasses.dataclass
class Stimulus:
    """Input beats per stream, the output beats expected and the full-rate cycles
    (None where the protocol leaves them to the block's own bench)."""

    inputs: dict[str, list[Item]]
    expected: list[Item]
    cycles: int | None


def _fields(sidecar: dict[str, Any], stream: str) -> dict[str, dict[str, Any]]:
    return sidecar["protocol"]["streams"][stream]["fields"]


def _width(sidecar: dict[str, Any], stream: str, field: str) -> int:
    return _fields(sidecar, stream)[field]["width"]


def _parity(value: int) -> int:
    return bin(value).count("1") & 1


def _row_masks(matrix: list[list[int]]) -> list[int]:
    """Each row of a 0/1 matrix as an integer, bit c = column c."""
    return [sum(bit << c for c, bit in enumerate(row)) for row in matrix]


def _gf2(rows: list[int], x: int) -> int:
    """rows . x over GF(2): bit r = parity of (row r AND x)."""
    return sum(_parity(row & x) << r for r, row in enumerate(rows))


def _concat(parts: list[tuple[int, int]]) -> int:
    """(value, width) parts joined LSB first."""
    value, shift = 0, 0
    for part, width in parts:
        value |= (part & ((1 << width) - 1)) << shift
        shift += width
    return value


def _copies(fn: dict[str, Any], item: Item) -> Item:
    """The output fields the protocol says are copies of input fields."""
    return {
        out.split(".")[-1]: item[src.split(".")[-1]] for out, src in fn.get("copies", {}).items()
    }


def _simple_cycles(sidecar: dict[str, Any], items: int) -> int:
    p = sidecar["protocol"]
    return items * p["cycles"]["cycles_per_item"] + p["latency"]["cycles"]


def viterbi_decompressor(sidecar: dict[str, Any], rng: random.Random, n: int) -> Stimulus:
    fn = sidecar["protocol"]["function"]
    cmp = fn["compare"]
    assert [p["source"] for p in fn["tap_vector"]] == ["in.payload.u", "state"]
    assert (cmp["weights"], cmp["op"], fn["network"]["over"]) == ("lsb_first", "less_than", "gf2")
    rows = _row_masks(sidecar["matrices"][fn["network"]["matrix"]])
    groups = sidecar["matrices"][cmp["rows"]]
    threshold = sidecar["matrices"][cmp["threshold"]][0]
    widths = [p["width"] for p in fn["tap_vector"]]
    state_bits, lsb = fn["state"]["width"], fn["state"]["next_from_tap_vector_lsb"]
    inputs, expected, state = [], [], 0
    for t in range(n):
        item = {"u": rng.getrandbits(widths[0]), "first": int(t == 0 or rng.random() < 0.08)}
        if any(item[flag] for flag in fn["state"]["zero_on"]):
            state = 0
        x = _concat([(item["u"], widths[0]), (state, widths[1])])
        raw = _gf2(rows, x)
        values = [sum((raw >> r & 1) << b for b, r in enumerate(group)) for group in groups]
        mask = sum(int(v < threshold) << j for j, v in enumerate(values))
        inputs.append(item)
        expected.append({"mask": mask, **_copies(fn, item)})
        state = (x >> lsb) & ((1 << state_bits) - 1)
    return Stimulus({"in": inputs}, expected, _simple_cycles(sidecar, n))


def xor_decoder(sidecar: dict[str, Any], rng: random.Random, n: int) -> Stimulus:
    fn, cyc = sidecar["protocol"]["function"], sidecar["protocol"]["cycles"]
    patches_rule = fn["patches"]
    assert patches_rule["sorted_by"] == ["block", "bit"] and patches_rule["effect"] == "flip"
    assert all(p["source"] == "in.payload.x" for p in fn["tap_vector"])
    rows = _row_masks(sidecar["matrices"][fn["network"]["matrix"]])
    n_in, n_out = _width(sidecar, "in", "x"), _width(sidecar, "out", "bits")
    ages = [p["age"] for p in fn["tap_vector"]]
    max_blocks = patches_rule["max_blocks_per_plane"]
    inputs, counts, patches, expected, cycles = [], [], [], [], 0
    done = 0
    while done < n:
        blocks = min(rng.randint(1, 12), max_blocks, n - done)
        done += blocks
        plane = []
        for b in range(blocks):
            k = rng.choice([0, 0, 0, 1, 1, 2, 3])
            plane += [(b, bit) for bit in sorted(rng.sample(range(n_out), min(k, n_out)))]
        counts.append({"count": len(plane)})
        patches += [{"block": b, "bit": bit} for b, bit in plane]
        history: list[int] = []
        for b in range(blocks):
            item = {"x": rng.getrandbits(n_in), "plane": int(b == 0)}
            item["first"] = int(item["plane"] or rng.random() < 0.15)
            if any(item[flag] for flag in fn["history"]["zero_on"]):
                history = []
            history = [item["x"], *history][: len(ages)]
            v = _concat([(history[a] if a < len(history) else 0, n_in) for a in ages])
            flips = [bit for pb, bit in plane if pb == b]
            bits = _gf2(rows, v)
            for bit in flips:
                bits ^= 1 << bit
            inputs.append(item)
            expected.append({"bits": bits, "plane": item["plane"]})
            k = len(flips)
            cycles += max(cyc["cycles_per_item"], k * cyc["cycles_per_patch"])
            cycles += cyc["extra_cycles_plane_start_with_patches"] * int(b == 0 and k > 0)
    cycles += sidecar["protocol"]["latency"]["cycles"]
    return Stimulus({"in": inputs, "count": counts, "patch": patches}, expected, cycles)


def lbi_decoder(sidecar: dict[str, Any], rng: random.Random, n: int) -> Stimulus:
    fn, cyc = sidecar["protocol"]["function"], sidecar["protocol"]["cycles"]
    codes = _fields(sidecar, "iz")["codes"]
    rank, cols = codes["element_width"], codes["elements"]
    assert fn["product"] == "and" and fn["reduce"] in ("or", "xor")
    reduce: Callable[[int], int] = _parity if fn["reduce"] == "xor" else (lambda v: int(v != 0))
    iz_items, ip_items, expected = [], [], []
    while len(ip_items) < n:
        width = rng.randint(1, cols)  # a clipped tile sends its other codes as 0
        column = [rng.getrandbits(rank) for _ in range(width)] + [0] * (cols - width)
        iz_items.append({"codes": _concat([(c, rank) for c in column])})
        tile_rows = rng.randint(1, 6)
        for r in range(tile_rows):
            row = {"code": rng.getrandbits(rank), "last": int(r == tile_rows - 1)}
            ip_items.append(row)
            mask = sum(reduce(row["code"] & c) << j for j, c in enumerate(column))
            expected.append({"mask": mask, **_copies(fn, row)})
    rows = len(ip_items)
    cycles = cyc["iz_load_cycles"] + rows * cyc["cycles_per_item"]
    return Stimulus(
        {"iz": iz_items, "ip": ip_items},
        expected,
        cycles + sidecar["protocol"]["latency"]["cycles"],
    )


def relative_decoder(sidecar: dict[str, Any], rng: random.Random, n: int) -> Stimulus:
    fn = sidecar["protocol"]["function"]
    n_cols, modulus = fn["n_cols"], fn["row_modulus"]
    gap_bits, value_bits = _width(sidecar, "in", "gap"), _width(sidecar, "in", "value")
    inputs, expected, position = [], [], -1
    for t in range(n):
        item = {
            "gap": rng.getrandbits(gap_bits),
            "value": rng.getrandbits(value_bits) if rng.random() < 0.8 else 0,
            "first": int(t == 0 or rng.random() < 0.05),
        }
        if item["first"]:
            position = -1
        position += 1 + item["gap"]
        inputs.append(item)
        expected.append(
            {
                "row": (position // n_cols) % modulus,
                "col": position % n_cols,
                "valid_weight": int(item["value"] != 0),
                **_copies(fn, item),
            }
        )
    return Stimulus({"in": inputs}, expected, _simple_cycles(sidecar, n))


def _search_segment(fn: dict[str, Any], keep: list[list[int]], steps: list[list[int]]) -> list[int]:
    """The VD inputs the search chooses for one segment (list of u per step)."""
    n_in, n_ff = (p["width"] for p in fn["tap_vector"])
    metric = fn["metric"]
    floor, states = metric["floor"], 1 << n_ff
    pm = [0 if s == metric["start_state"] else floor for s in range(states)]
    choices = []
    for scores in steps:
        branch = [sum(s for s, k in zip(scores, row, strict=True) if k) for row in keep]
        selected, chosen = [], []
        for nxt in range(states):
            xs = [nxt + (h << n_ff) for h in range(1 << n_in)]
            best_x = max(xs, key=lambda x: (pm[x >> n_in] + branch[x], -x))
            selected.append(pm[best_x >> n_in] + branch[best_x])
            chosen.append(best_x)
        top = max(selected)
        pm = [max(v - top, floor) for v in selected]
        choices.append(chosen)
    state = pm.index(0)
    inputs = []
    for chosen in reversed(choices):
        x = chosen[state]
        inputs.append(x & ((1 << n_in) - 1))
        state = x >> n_in
    return inputs[::-1]


def viterbi_search(sidecar: dict[str, Any], rng: random.Random, n: int) -> Stimulus:
    fn = sidecar["protocol"]["function"]
    assert fn["ties"] == "lowest tap vector"
    keep = sidecar["matrices"][fn["keep_table"]]
    scores = _fields(sidecar, "in")["scores"]
    assert scores["element_encoding"] == "signed"
    low, top = scores["range"]
    depth = fn["max_segment"]
    inputs, expected = [], []
    while len(inputs) < n:
        implicit = rng.random() < 0.25  # no last flag: the block cuts at max_segment
        length = depth if implicit else rng.randint(1, depth)
        steps = [
            [rng.choice([low, -1, 0, 0, 1, top, rng.randint(low, top)]) for _ in keep[0]]
            for _ in range(length)
        ]
        for t, step in enumerate(steps):
            word = _concat([(s, scores["element_width"]) for s in step])
            last = int(t == length - 1 and not implicit)
            inputs.append({"scores": word, "first": int(t == 0), "last": last})
        for t, u in enumerate(_search_segment(fn, keep, steps)):
            expected.append({"u": u, "first": int(t == 0)})
    return Stimulus({"in": inputs}, expected, None)


#: protocol function kind -> stimulus and expected outputs.
MODELS: dict[str, Callable[[dict[str, Any], random.Random, int], Stimulus]] = {
    "viterbi_decompressor": viterbi_decompressor,
    "xor_decoder": xor_decoder,
    "lbi_decoder": lbi_decoder,
    "relative_decoder": relative_decoder,
    "viterbi_search": viterbi_search,
}


def stimulus(sidecar: dict[str, Any], seed: int, items: int) -> Stimulus:
    """Random stimulus of about ``items`` input beats for the block the sidecar
    describes, with its expected outputs."""
    return MODELS[sidecar["protocol"]["function"]["kind"]](sidecar, random.Random(seed), items)
