"""The line protocol between bench/validation.py and its worker processes.

A worker prints one ``@@{json}`` line per message on stdout ("ready" once, then a "run"
for every ``repeat`` command and a "rest" for the final ``rest`` command it reads on
stdin). Standard library only: the TFDV worker imports it from its own venv.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def serve_protocol(ready: dict, repeat, rest) -> None:
    """Announce ``ready``, then answer 'repeat' with ``repeat()`` until 'rest' ends it."""
    def say(kind, payload):
        sys.stdout.write("@@" + json.dumps({kind: payload}, default=str) + "\n")
        sys.stdout.flush()

    say("ready", ready)
    for line in sys.stdin:
        command = line.strip()
        if command == "repeat":
            say("run", repeat())
        elif command == "rest":
            say("rest", rest())
            return


class Worker:
    """A benchmark worker process (its own memory, its own interpreter), driven line by line,
    so both systems' timing repeats can interleave and share the machine's load alike."""

    def __init__(self, command: list[str], job_path: Path, log: Path):
        self.log = open(log, "w")
        self.proc = subprocess.Popen([*command, str(job_path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.log, text=True)
        self.ready = self._read("ready")

    def _read(self, kind: str):
        for line in self.proc.stdout:
            if line.startswith("@@"):
                message = json.loads(line[2:])
                if kind in message:
                    return message[kind]
        raise RuntimeError(f"worker stopped before sending {kind!r}; see {self.log.name}")

    def ask(self, command: str, kind: str):
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self._read(kind)

    def finish(self) -> dict:
        rest = self.ask("rest", "rest")
        self.proc.wait(timeout=600)
        self.log.close()
        return rest
