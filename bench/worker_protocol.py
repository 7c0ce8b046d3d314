"""The line protocol between bench/validation.py and its worker processes.

A worker prints one ``@@{json}`` line per message on stdout ("ready" once, then a "run"
for every ``repeat`` command and a "rest" for the final ``rest`` command it reads on
stdin). Standard library only: the TFDV worker imports it from its own venv.
"""

from __future__ import annotations

import json
import sys


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
