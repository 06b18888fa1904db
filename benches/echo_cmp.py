#!/usr/bin/env python3
"""Alternates echo servers under the same load, the order rotated each
repetition: 3 load processes x 300 connections x ROUNDS round trips of
1024 B (the sched bench's `load`), server CPU (user + sys from wait4's
rusage) per round trip, voluntary and involuntary context switches, and
the median ratio of each server to the first.

Usage (after `cargo bench --bench sched --no-run`):
  benches/echo_cmp.py target/release/deps/sched-HASH 300 9 \
      "mio=target/release/deps/sched-HASH mio-echo" \
      "copipe=target/release/copipe echo --port 0"
"""
import os, signal, subprocess, sys, time, statistics
bench, rounds, reps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
servers = [a.split('=', 1) for a in sys.argv[4:]]
procs, conns = 3, 300
res = {n: [] for n, _ in servers}
for rep in range(reps):
    order = servers[rep % len(servers):] + servers[:rep % len(servers)]
    for name, cmd in order:
        p = subprocess.Popen(cmd.split(), stdout=subprocess.PIPE)
        line = p.stdout.readline().decode()
        addr = line.strip().rsplit(' ', 1)[1]
        t0 = time.time()
        ls = [subprocess.Popen([bench, 'load', addr, str(conns), str(rounds)], stdout=subprocess.PIPE) for _ in range(procs)]
        rt = sum(int(l.communicate()[0] or 0) for l in ls)
        wall = time.time() - t0
        p.send_signal(signal.SIGKILL)
        _, _, ru = os.wait4(p.pid, 0)
        res[name].append((ru.ru_utime, ru.ru_stime, rt, wall, ru.ru_nvcsw, ru.ru_nivcsw))
        print(f"rep {rep} {name:10} user {ru.ru_utime/rt*1e6:5.2f} sys {ru.ru_stime/rt*1e6:5.2f} cpu {(ru.ru_utime+ru.ru_stime)/rt*1e6:5.2f} us/rt wall {wall:5.1f}s rt {rt} vcsw/krt {ru.ru_nvcsw/rt*1e3:.0f} ivcsw/krt {ru.ru_nivcsw/rt*1e3:.0f} load {os.getloadavg()[0]:.1f}", flush=True)
meds = {}
for n, rs in res.items():
    cpu = statistics.median((u + s) / rt * 1e6 for u, s, rt, *_ in rs)
    usr = statistics.median(u / rt * 1e6 for u, s, rt, *_ in rs)
    meds[n] = cpu
    vc = statistics.median(r[4] / r[2] * 1e3 for r in rs)
    ivc = statistics.median(r[5] / r[2] * 1e3 for r in rs)
    print(f"{n:10} median voluntary switches {vc:.0f}, involuntary {ivc:.0f} per 1000 rt")
    print(f"{n:10} median cpu {cpu:.2f} us/rt (user {usr:.2f})")
names = [n for n, _ in servers]
for n in names[1:]:
    print(f"ratio {n}/{names[0]} {meds[n]/meds[names[0]]:.3f}")
    # per-rep ratios
    print("  per rep:", " ".join(f"{((res[n][i][0]+res[n][i][1])/res[n][i][2])/((res[names[0]][i][0]+res[names[0]][i][1])/res[names[0]][i][2]):.2f}" for i in range(reps)))
