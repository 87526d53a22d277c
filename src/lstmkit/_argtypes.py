"""argparse types shared by the command-line tools (one message style: "expected …, got '…'")."""

from __future__ import annotations

import argparse


def int_at_least(minimum: int, expected: str):
    """An argparse type: an integer ≥ ``minimum``; ``expected`` says what in the error ("a positive integer")."""

    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            v = minimum - 1
        if v < minimum:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return v

    return parse


positive_int = int_at_least(1, "a positive integer")
non_negative_int = int_at_least(0, "a non-negative integer")
