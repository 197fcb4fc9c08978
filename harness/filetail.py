"""The lines a file gains while another process writes it, each handed over once.

Toxiproxy's log and tshark's output are both read this way while they grow:
from where the file stood when the tail was opened (or its start), whole lines
only, a line not yet written to its end kept for the next read.
"""

from __future__ import annotations

from pathlib import Path


class FileTail:
    def __init__(self, path: Path, *, from_end: bool = True) -> None:
        self.file = Path(path).open("rb")
        if from_end:
            self.file.seek(0, 2)
        self.rest = b""

    def new_lines(self) -> list[bytes]:
        lines = (self.rest + self.file.read()).split(b"\n")
        self.rest = lines.pop()  # a line not written to its end yet
        return lines

    def close(self) -> None:
        self.file.close()


__all__ = ["FileTail"]
