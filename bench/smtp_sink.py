"""The benchmark's SMTP server, in a process of its own so that counting
e-mails takes no CPU from the load generator's or the network's.

`python -m bench.smtp_sink PORT FILE`: takes every message and appends one
line per recipient to FILE: `<arrival unix time>\t<recipient>\t<reference>`
(the reference is read from the subject).
"""

import re
import signal
import sys
import time
from email.parser import BytesHeaderParser
from email.policy import default as default_policy

from aiosmtpd.controller import Controller

REFERENCE = re.compile(r"REF-\d{4}-\d+")


class Recorder:
    def __init__(self, out):
        self.out = out
        self.headers = BytesHeaderParser(policy=default_policy)

    async def handle_DATA(self, server, session, envelope):
        arrived = time.time()
        subject = str(self.headers.parsebytes(envelope.content).get("Subject", ""))
        found = REFERENCE.search(subject)
        reference = found.group(0) if found else "-"
        for rcpt in envelope.rcpt_tos:
            self.out.write(f"{arrived:.6f}\t{rcpt}\t{reference}\n")
        self.out.flush()
        return "250 OK"


def main():
    port, path = int(sys.argv[1]), sys.argv[2]
    with open(path, "a", encoding="utf-8") as out:
        controller = Controller(Recorder(out), hostname="127.0.0.1", port=port)
        controller.start()
        print(f"smtp sink on 127.0.0.1:{port}", flush=True)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        try:
            signal.pause()
        except (KeyboardInterrupt, SystemExit):
            pass
        finally:
            controller.stop()


if __name__ == "__main__":
    main()
