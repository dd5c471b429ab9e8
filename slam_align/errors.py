"""One exception type for every user-facing error.

The CLI prints ``error: <message>`` on one line and exits non-zero, so a message must
name the file / field / value at fault and say what was expected.
"""


class SlamError(Exception):
    """A problem with the user's input or environment, reported as one clear line."""

    exit_code = 2

    def __init__(self, message: str):
        # Keep it one line whatever the caller passed: the CLI contract is "one clear line".
        super().__init__(" ".join(str(message).split()))
