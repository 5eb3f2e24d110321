"""py-spy against the network's processes during a level: where their CPU goes.

Each process gets `py-spy record --nonblocking --format raw` (sampling
without pausing it); the raw output is one line per distinct stack with
its sample count, read here into the frames that take the most samples:
`self` (the innermost frame, where the CPU is spent) and `own code` (the
project's frames, whatever they call).
"""

import collections
import os
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
OWN_CODE = ("services/", "gateway/", "shared/")
FRAME = re.compile(r"^(?P<function>.*) \((?P<path>[^:()]+)(?::(?P<line>\d+))?\)$")


def py_spy():
    return os.path.join(os.path.dirname(sys.executable), "py-spy")


def command(pid, seconds, out_path, rate=100):
    return [
        py_spy(),
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(int(seconds)),
        "--rate",
        str(rate),
        "--format",
        "raw",
        "--nonblocking",
        "--output",
        str(out_path),
    ]


def record(pids, seconds, out_dir):
    """Start one py-spy per named pid; returns {name: (Popen, output path, command)}."""
    started = {}
    for name, pid in pids.items():
        out_path = pathlib.Path(out_dir) / f"profile-{name.replace(' ', '-')}.txt"
        cmd = command(pid, seconds, out_path)
        log = open(pathlib.Path(out_dir) / f"py-spy-{name.replace(' ', '-')}.log", "wb")  # noqa: SIM115  (the process writes to it after this returns)
        started[name] = (
            subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
            ),
            out_path,
            cmd,
        )
        log.close()
    return started


def failed(out_path):
    """What py-spy said when it wrote no profile (no ptrace permission, say)."""
    log = pathlib.Path(out_path).parent / pathlib.Path(out_path).name.replace("profile-", "py-spy-").replace(
        ".txt", ".log"
    )
    said = log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []
    return {"samples": 0, "self": [], "own": [], "error": said[0] if said else "no output"}


def short(frame):
    """`function (path)` with the path cut to the package or the repo (no
    line number: samples add up per function)."""
    match = FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    path = match["path"]
    for marker in ("site-packages/", f"{ROOT}/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{match['function']} ({path})"


def top_frames(raw_path, count=8):
    """{"samples", "self": [(frame, share)], "own": [(frame, share)]} from py-spy's raw output."""
    self_counts, own_counts, total = collections.Counter(), collections.Counter(), 0
    for line in pathlib.Path(raw_path).read_text(errors="replace").splitlines():
        stack, _, samples = line.rpartition(" ")
        if not stack or not samples.isdigit():
            continue
        samples = int(samples)
        total += samples
        frames = [short(frame) for frame in stack.split(";")]
        frames = [frame for frame in frames if not frame.startswith("process ")]  # py-spy's header
        if frames:
            self_counts[frames[-1]] += samples
        for frame in set(frames):
            if any(f"({prefix}" in frame for prefix in OWN_CODE):
                own_counts[frame] += samples

    def shares(counter):
        return [(frame, n / total) for frame, n in counter.most_common(count)] if total else []

    return {"samples": total, "self": shares(self_counts), "own": shares(own_counts)}
