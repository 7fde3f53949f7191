"""
Runs the b4 command once per job, each in a process of its own, forked
from this one once b4 is imported (b4-crosscheck.itest.ts). A b4 process
spends most of its time importing b4 and what it imports (dkim, dnspython,
httpx: half a second); the fork starts every run from that imported state,
as a new `b4` process would be after its imports, with nothing of another
run in it. Each run calls b4's console_scripts entry point, as /usr/bin/b4
does, with the job's arguments, cwd, stdout and stderr (stdin /dev/null);
the environment is this process's. The test runs `b4` itself once too, and
checks that it writes what the forked run writes.

Usage: python3 b4-forked.py LIMIT < jobs.json > codes.json
jobs.json: [{"cwd": DIR, "args": [...], "stdout": FILE, "stderr": FILE}, ...]
codes.json: the exit codes, in the jobs' order (negative: killed by that signal).
"""
import gc
import json
import os
import sys
import traceback
from importlib.metadata import distribution


def entry_point():
    for ep in distribution('b4').entry_points:
        if ep.group == 'console_scripts' and ep.name == 'b4':
            return ep.load()
    raise SystemExit('b4 has no console_scripts entry point "b4"')


def child(job, cmd):
    code = 1
    try:
        os.chdir(job['cwd'])
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        for fd, path in ((1, job['stdout']), (2, job['stderr'])):
            out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(out, fd)
            os.close(out)
        sys.argv = ['b4'] + job['args']
        try:
            # /usr/bin/b4: sys.exit(load_entry_point('b4==...', 'console_scripts', 'b4')())
            sys.exit(cmd())
        except SystemExit as e:
            if e.code is None:
                code = 0
            elif isinstance(e.code, int):
                code = e.code
            else:
                print(e.code, file=sys.stderr)
                code = 1
        except BaseException:
            traceback.print_exc()
            code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def main():
    limit = max(1, int(sys.argv[1]))
    jobs = json.load(sys.stdin)
    cmd = entry_point()
    import b4.mbox  # noqa: F401 -- what `b4 am` imports first thing (command.cmd_am)
    # What is imported now stays as it is in every child: the collector
    # leaves it alone, so a child does not copy every page of it by walking
    # it (gc.freeze, the fork-server idiom; nothing b4 does changes).
    gc.freeze()
    codes = [None] * len(jobs)
    running = {}
    nxt = 0
    while nxt < len(jobs) or running:
        while nxt < len(jobs) and len(running) < limit:
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                child(jobs[nxt], cmd)
            running[pid] = nxt
            nxt += 1
        pid, status = os.wait()
        codes[running.pop(pid)] = os.waitstatus_to_exitcode(status)
    json.dump(codes, sys.stdout)


if __name__ == '__main__':
    main()
