"""The program ``grpo-env sandbox doctor`` runs inside a sandbox: it tries to break each limit
and prints what it saw as one JSON line (see ``doctor._limit_checks``)."""

PROBE = r"""
import json, os, resource, signal, socket, sys, time
out = {}
status = open("/proc/self/status").read().splitlines()
field = {k: v.strip() for k, _, v in (line.partition(":") for line in status)}
out["uid"] = os.getuid()
out["python"] = sys.version.split()[0]
out["cap_eff"] = field.get("CapEff")
out["no_new_privs"] = field.get("NoNewPrivs")
out["seccomp"] = field.get("Seccomp")
out["env"] = sorted(os.environ)
out["interfaces"] = sorted(os.listdir("/sys/class/net"))
try:
    socket.create_connection(("1.1.1.1", 53), timeout=3).close()
    out["network"] = "connected to 1.1.1.1:53"
except OSError as err:
    out["network"] = f"{type(err).__name__}: {err}"
out["root_writes"] = []
for path in ("/usr/probe", "/etc/probe", "/probe", "/var/probe"):
    try:
        open(path, "w").close()
        out["root_writes"].append(path)
    except OSError:
        pass
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
written = 0
try:  # many small files, so the tmpfs size (not the file-size ulimit) is what stops us
    while written < 64 << 20:
        with open(f"/work/fill{written}", "wb") as handle:
            handle.write(b"x" * (256 << 10))
        written += 256 << 10
except OSError as err:
    out["work_full_error"] = err.strerror
out["work_written_mb"] = round(written / 2**20, 2)
for name in os.listdir("/work"):
    os.remove("/work/" + name)
size = 0
try:
    with open("/tmp/big", "wb", buffering=0) as handle:
        while size < 8 << 20:
            size += handle.write(b"x" * 65536)
except OSError as err:
    out["fsize_error"] = err.strerror
out["fsize_written"] = size
os.remove("/tmp/big")
handles = []
try:
    while len(handles) < 100000:
        handles.append(open("/dev/null"))
except OSError as err:
    out["nofile_error"] = err.strerror
out["open_files"] = len(handles) + 3
for h in handles:
    h.close()
children = []
try:
    while len(children) < 10000:
        pid = os.fork()
        if pid == 0:
            time.sleep(60)
            os._exit(0)
        children.append(pid)
except OSError as err:
    out["fork_error"] = err.strerror
out["forked"] = len(children)
for pid in children:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
burners = []
for _ in range(2):
    pid = os.fork()
    if pid == 0:
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            pass
        os._exit(0)
    burners.append(pid)
started = time.monotonic()
for pid in burners:
    os.waitpid(pid, 0)
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
busy = usage.ru_utime + usage.ru_stime
out["cpu_cores_used"] = round(busy / max(time.monotonic() - started, 1e-6), 2)
print(json.dumps(out))
"""
