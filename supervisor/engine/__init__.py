"""The policy applied to the core: planning ladders and timers, firing steps, deadlines and
reports. Pure (explicit inputs, no I/O), above both `core` and `policy` (.importlinter)."""
