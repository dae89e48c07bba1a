"""Logical-to-physical layer schedules for weight-tied depth ("unfolding").

A seed encoder of ``N`` physical blocks can run as a deeper logical model by applying
some blocks more than once. A schedule is the tuple of physical block indices, one per
logical layer, in the order they run. Two standard orders:

    "rep"  each block repeated in a row:   N=3, depth 6 -> (0, 0, 1, 1, 2, 2)
    "cyc"  the whole stack cycled:         N=3, depth 6 -> (0, 1, 2, 0, 1, 2)

When ``depth`` is not a multiple of ``N`` the "rep" order gives the first
``depth % N`` blocks one extra repeat (N=6, depth 8 -> 0 0 1 1 2 3 4 5), so the
deeper models of one seed differ by where the extra compute goes, never by
parameters. Any explicit tuple is also a schedule.

Every application of a block after its first is an *occurrence* ``k >= 1`` of it;
the encoder keeps per-occurrence BatchNorm statistics (and, optionally, a small
per-occurrence output affine) keyed by it.
"""

from typing import List, Sequence, Tuple, Union

SCHEDULE_ORDERS = ("rep", "cyc")

Schedule = Tuple[int, ...]
ScheduleSpec = Union[str, Tuple[int, ...]]


def repeat_schedule(num_blocks: int, depth: int) -> Schedule:
    """Each block repeated in a row; the first ``depth % num_blocks`` blocks once more."""
    base, extra = divmod(depth, num_blocks)
    out = []
    for block in range(num_blocks):
        out += [block] * (base + (1 if block < extra else 0))
    return tuple(out)


def cycle_schedule(num_blocks: int, depth: int) -> Schedule:
    """The whole stack of blocks run again and again, cut at ``depth`` layers."""
    return tuple(i % num_blocks for i in range(depth))


def resolve_schedule(spec: ScheduleSpec, num_blocks: int, depth: int) -> Schedule:
    """The concrete schedule of ``spec`` ("rep", "cyc" or a tuple) for ``depth`` logical layers.

    Raises:
        ValueError: an unknown order, a tuple whose length is not ``depth`` or that
            names a block outside ``0..num_blocks-1``.
    """
    if num_blocks < 1 or depth < 1:
        raise ValueError(f"need at least one block and one layer, got {num_blocks} blocks, depth {depth}")
    if isinstance(spec, str):
        if spec == "rep":
            return repeat_schedule(num_blocks, depth)
        if spec == "cyc":
            return cycle_schedule(num_blocks, depth)
        raise ValueError(f"unknown unfolding order {spec!r}; valid: {SCHEDULE_ORDERS} or block indices")
    schedule = tuple(int(i) for i in spec)
    if len(schedule) != depth:
        raise ValueError(
            f"unfolding schedule {schedule} has {len(schedule)} layers, the subnet has depth {depth}"
        )
    bad = [i for i in schedule if not 0 <= i < num_blocks]
    if bad:
        raise ValueError(f"unfolding schedule {schedule} names blocks {bad}; the model has {num_blocks}")
    return schedule


def occurrences(schedule: Sequence[int]) -> Tuple[int, ...]:
    """For each logical layer, how many times its block already ran before it (0 = first use)."""
    seen = {}
    out = []
    for block in schedule:
        out.append(seen.get(block, 0))
        seen[block] = out[-1] + 1
    return tuple(out)


def max_occurrences(schedule: Sequence[int]) -> int:
    """Largest number of times one block runs (1 = no weight tying)."""
    return max(occurrences(schedule)) + 1 if schedule else 0


def occurrence_key(subnet_name: str, occurrence: int) -> str:
    """Key of the statistics one subnet keeps for one occurrence ("name", "name@1", ...)."""
    return subnet_name if occurrence == 0 else f"{subnet_name}@{occurrence}"


def statistics_keys(subnets: Sequence, num_blocks: int) -> List[str]:
    """Keys of every BatchNorm statistics set a grid of ``SubnetConfig`` needs.

    One per subnet, plus one per extra occurrence of a block in an unfolded subnet. A
    lone subnet without repeats needs none (the model keeps one shared set).
    """
    keys = [
        occurrence_key(s.name, k) for s in subnets for k in range(max_occurrences(s.schedule(num_blocks)))
    ]
    return keys if len(keys) > 1 else []
