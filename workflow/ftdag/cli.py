"""ftdag's command line.

ftdag serve [--results results] [--port 8000]   the compare family's OpenAI-compatible
                                                server on 127.0.0.1, until Ctrl-C
"""

from __future__ import annotations

import sys

COMMANDS = {"serve": "the compare family's OpenAI-compatible server on 127.0.0.1"}


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        listed = "\n".join(f"  {name:8} {what}" for name, what in COMMANDS.items())
        print(f"usage: ftdag COMMAND [options]\n\ncommands:\n{listed}", file=sys.stderr)
        return 0 if argv[:1] in (["-h"], ["--help"]) else 2
    from ftdag.compare.server import main as serve

    return serve(argv[1:], prog="ftdag serve")


if __name__ == "__main__":
    sys.exit(main())
