"""Synthetic multilingual world and `slam demo` (runs the whole SLAM story on a CPU)."""
