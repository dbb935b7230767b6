#!/usr/bin/env python3
"""Runs the shell examples of the READMEs and docs/*.md against the built binaries.

Every fenced ```sh block of README.md and */*.md (docs/, each program's README, ...) carries a marker on the line before it:
  <!-- example: run -->              run by this test
  <!-- example: skip: REASON -->     not run (installs packages, runs for minutes, needs a
                                     fleet: the demo test covers those); counted and printed
A block without a marker fails the test, so a new example is either run or says why not.

The blocks of one page run in order, each with `bash -euo pipefail`, in a fresh directory
where `build/` is the build tree and `docs/`, `firmware-sim/`, `scripts/` are the
repository's, with a mosquitto of the test's own. The fixed addresses the examples name
(the broker tcp:// or mqtt://127.0.0.1:1883, the agent's UDP port 8094, the metrics ports 9108/9109)
and state directories (/var/lib/outpost, /run/outpost) are moved to the test's own ports
and to the same paths under that directory, in the blocks and in the example configs
alike; `sudo` is dropped. Nothing else is changed. A line ending in `&` starts a daemon:
the test waits until it is ready (the agent logged that it started, the collector that it
subscribed), and at the end of the block SIGTERMs it and requires exit code 0.

  docs_examples_test.py <repo root> <build dir>
"""
import glob
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

MARK = re.compile(r"^<!--\s*example:\s*(run|skip)(?::\s*(.*?))?\s*-->\s*$")
FENCE = re.compile(r"^```(\w*)\s*$")
SHELL = {"sh", "bash", "shell", "console"}


def blocks(path):
    """(line, kind, reason, text) of every shell block of a Markdown file."""
    out = []
    lines = open(path, encoding="utf-8").read().split("\n")
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m or not m.group(1):
            if m:  # a fence without a language: skip to its end
                i += 1
                while i < len(lines) and not lines[i].startswith("```"):
                    i += 1
            i += 1
            continue
        lang, start = m.group(1), i
        j = i + 1
        while j < len(lines) and not lines[j].startswith("```"):
            j += 1
        if lang in SHELL:
            k = start - 1
            while k >= 0 and not lines[k].strip():
                k -= 1
            mark = MARK.match(lines[k]) if k >= 0 else None
            kind = mark.group(1) if mark else None
            reason = (mark.group(2) or "") if mark else ""
            out.append((start + 1, kind, reason, "\n".join(lines[start + 1:j])))
        i = j + 1
    return out


def candidate_port(taken):
    # Below the kernel's ephemeral range, where no port-0 bind lands (tests/support/process.h).
    while True:
        p = random.randrange(20000, 32000)
        if p not in taken:
            taken.add(p)
            return p


class Page:
    """The directory, broker and relocations one page's blocks run with."""

    def __init__(self, root, build):
        self.root, self.build = root, build
        self.dir = tempfile.mkdtemp(prefix="outpost_docs_")
        taken = set()
        self.broker_port = candidate_port(taken)
        self.subst = [
            ("tcp://127.0.0.1:1883", f"tcp://127.0.0.1:{self.broker_port}"),
            ("mqtt://127.0.0.1:1883", f"mqtt://127.0.0.1:{self.broker_port}"),
            ("127.0.0.1:8094", f"127.0.0.1:{candidate_port(taken)}"),
            ("/dev/udp/127.0.0.1/8094", None),  # filled below from the UDP port
            ("127.0.0.1:9108", f"127.0.0.1:{candidate_port(taken)}"),
            ("127.0.0.1:9109", f"127.0.0.1:{candidate_port(taken)}"),
            ("/var/lib/outpost", os.path.join(self.dir, "var/lib/outpost")),
            ("/run/outpost", os.path.join(self.dir, "run/outpost")),
        ]
        udp = self.subst[2][1].split(":")[1]
        self.subst[3] = ("/dev/udp/127.0.0.1/8094", f"/dev/udp/127.0.0.1/{udp}")
        os.symlink(build, os.path.join(self.dir, "build"))
        for d in ("firmware-sim", "scripts"):
            os.symlink(os.path.join(root, d), os.path.join(self.dir, d))
        docs = os.path.join(self.dir, "docs")
        os.mkdir(docs)
        for f in os.listdir(os.path.join(root, "docs")):
            src = os.path.join(root, "docs", f)
            if f.endswith(".toml"):
                with open(src) as i, open(os.path.join(docs, f), "w") as o:
                    o.write(self.relocate(i.read()))
            else:
                os.symlink(src, os.path.join(docs, f))
        self.broker = None

    def relocate(self, text):
        for old, new in self.subst:
            text = text.replace(old, new)
        return re.sub(r"(^|[;&|(]\s*)sudo\s+", r"\1", text, flags=re.M)

    def start_broker(self):
        conf = os.path.join(self.dir, "mosquitto.conf")
        with open(conf, "w") as f:
            f.write(f"listener {self.broker_port} 127.0.0.1\nallow_anonymous true\n"
                    "persistence false\n")
        if os.geteuid() == 0:
            with open(conf, "a") as f:
                f.write("user root\n")
        log = open(os.path.join(self.dir, "mosquitto.log"), "w")
        self.broker = subprocess.Popen(["mosquitto", "-c", conf], stdout=log, stderr=log)
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.broker.poll() is not None:
                return False
            if subprocess.run(["mosquitto_pub", "-p", str(self.broker_port), "-t", "ping", "-n"],
                              capture_output=True).returncode == 0:
                return True
            time.sleep(0.1)
        return False

    def script(self, text, line):
        """The block as a bash script: daemons (lines ending in &) waited for and stopped."""
        out = ["set -euo pipefail", "bg_pids=()", f"n_bg={line * 100}",
               "started() {  # started <log>: wait until the daemon is ready, or fail",
               "  local deadline=$((SECONDS + 15))",
               "  # the agent once started, the collector once subscribed (it says so after 'started')",
               "  until grep -qE 'outpost-agent [0-9.]+ started|subscribed to' \"$1\"; do",
               "    kill -0 \"${bg_pids[-1]}\" 2>/dev/null || { echo \"daemon exited:\"; cat \"$1\"; exit 1; }",
               "    ((SECONDS < deadline)) || { echo \"daemon did not start:\"; cat \"$1\"; exit 1; }",
               "    sleep 0.1",
               "  done",
               "}"]
        for row in self.relocate(text).split("\n"):
            code = re.sub(r"\s+#.*$", "", row).rstrip()
            if code.endswith("&") and not code.endswith("&&"):
                out.append("n_bg=$((n_bg + 1))")
                out.append(code[:-1].rstrip() + ' >"daemon-$n_bg.log" 2>&1 &')
                out.append('bg_pids+=($!); started "daemon-$n_bg.log"')
            else:
                out.append(row)
        out += ["for pid in \"${bg_pids[@]}\"; do",
                "  kill -TERM \"$pid\"",
                "  rc=0; wait \"$pid\" || rc=$?",
                "  [[ $rc -eq 0 ]] || { echo \"daemon $pid exited $rc after SIGTERM\"; exit 1; }",
                "done"]
        return "\n".join(out) + "\n"

    def run(self, text, line):
        p = subprocess.Popen(["bash", "-c", self.script(text, line)], cwd=self.dir,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             start_new_session=True, text=True)
        try:
            out, _ = p.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            out, _ = p.communicate()
            return False, out + "\n(timed out after 60 s)"
        finally:
            try:
                os.killpg(p.pid, signal.SIGKILL)  # anything the block left behind
            except ProcessLookupError:
                pass
        return p.returncode == 0, out

    def close(self):
        if self.broker:
            self.broker.terminate()
            self.broker.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def main():
    root, build = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    pages = [os.path.join(root, "README.md")] + sorted(
        glob.glob(os.path.join(root, "*", "README.md")) + glob.glob(os.path.join(root, "*", "*.md"))
    )
    pages = [p for p in dict.fromkeys(pages) if "/build" not in p and "/third_party/" not in p]
    passed = failed = skipped = 0
    for path in pages:
        rel = os.path.relpath(path, root)
        found = blocks(path)
        to_run = [b for b in found if b[1] == "run"]
        for line, kind, reason, _ in found:
            if kind is None:
                print(f"FAIL {rel}:{line}: a shell example without <!-- example: run --> or "
                      "<!-- example: skip: REASON --> before it")
                failed += 1
            elif kind == "skip":
                print(f"skip {rel}:{line}: {reason or '(no reason given)'}")
                skipped += 1
                if not reason:
                    failed += 1
        if not to_run:
            continue
        for attempt in range(3):  # new ports if one was taken
            page = Page(root, build)
            results = []
            if not page.start_broker():
                page.close()
                continue
            for line, _, _, text in to_run:
                ok, out = page.run(text, line)
                results.append((line, ok, out))
                if not ok:
                    break
            page.close()
            if all(ok for _, ok, _ in results) or "already in use" not in results[-1][2]:
                break
        else:
            print(f"FAIL {rel}: could not start a broker")
            failed += 1
            continue
        for line, ok, out in results:
            if ok:
                print(f"ok   {rel}:{line}")
                passed += 1
            else:
                print(f"FAIL {rel}:{line}:\n" + "\n".join("     " + l for l in out.splitlines()))
                failed += 1
        failed += len(to_run) - len(results)  # blocks after a failure did not run
    print(f"{passed} examples run, {skipped} skipped (marked as not runnable in a test)")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
