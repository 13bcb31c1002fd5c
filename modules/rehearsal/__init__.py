"""Offline rehearsal of a deployment: every stack of an environment applied to moto's server mode.

    python -m modules.rehearsal dev [prod ...] [--synth-dir DIR] [--work-dir DIR] [--junit FILE]

Per stack, in dependency order, a rehearsal copy (`rewrite.py`: the local provider's version,
local state, every endpoint on the loopback emulator, fake credentials, the account pinned)
is initialised from the local provider mirror, validated, applied, planned again (no changes
expected) and, in reverse order, destroyed (refused where the environment protects its data).
Where the emulator is not AWS, `differences.py` says so, row by row, and the run reports each
row it applied. No cdktn import: the command reads a synth's JSON.
"""
