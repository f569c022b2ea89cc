"""The rollout lab: a rolling update behind a real Service and a real ingress,
under real load, once per init (examples/rollout/run.sh runs it; read
examples/rollout/README.md first).

usage: lab.py IMAGE_DIR OUT_JSON     (as root; settings from ROLLOUT_* variables)

IMAGE_DIR holds the image's files (drainit, tini, app.py). Everything the lab
creates is named ro-*: network namespaces (the node, one per pod), the bridge
and veths inside the node's namespace, runc containers under a runc root of
its own, an nginx. All of it is removed at the end, also on failure or
SIGTERM/SIGINT (and run.sh removes what a killed lab.py could not).

One machine plays a node:
- the "node" netns ro-node holds the bridge ro-br0 (10.213.0.1/24), the
  Service rules (iptables nat: kube-proxy's chains, one KUBE-SEP DNAT rule per
  endpoint chosen by `-m statistic --mode random --probability 1/(n-i)`), the
  ingress (nginx, upstream keep-alive pool, reloaded on each endpoint change)
  and the load generators;
- each pod is a netns of its own with a veth on the bridge and the next
  address (as a CNI bridge plugin with host-local IPAM gives), and a runc
  container joining it: PID 1 is the init under test, its child app.py;
- the kubelet and the endpoint controller are threads of this script:
  deleting a pod sends its stop at once (runc kill TERM, or the preStop hook
  then TERM; runc kill KILL at the grace period) and removes its endpoint from
  the Service rules and the ingress only after the propagation lag.
"""
import concurrent.futures
import ctypes
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

def env_float(name, default):
    return float(os.environ.get(name, default))


QUICK = os.environ.get("ROLLOUT_QUICK", "") not in ("", "0")
REPLICAS = int(os.environ.get("ROLLOUT_REPLICAS", "2" if QUICK else "3"))
LAG = env_float("ROLLOUT_LAG", 2)  # endpoint removal -> Service rules and ingress
GRACE = env_float("ROLLOUT_GRACE", 30)  # terminationGracePeriodSeconds
DRAIN = env_float("ROLLOUT_DRAIN", 5)  # drainit's fixed drain, and the preStop sleep
ADAPTIVE = os.environ.get("ROLLOUT_ADAPTIVE", "--drain 15s --drain-min 2s --drain-quiet 1s").split()
CONCURRENCY = int(os.environ.get("ROLLOUT_CONCURRENCY", "8"))  # per load stream
RATE = int(os.environ.get("ROLLOUT_RATE", "25"))  # requests/s per worker
TIMEOUT = env_float("ROLLOUT_TIMEOUT", 5)  # the clients' request timeout
SANDBOX_TEARDOWN = env_float("ROLLOUT_SANDBOX_TEARDOWN", 1)  # container exit -> CNI DEL (PLEG's relist)
PROBE = env_float("ROLLOUT_PROBE_PERIOD", 1)  # the readiness probe's periodSeconds
MIN_READY = env_float("ROLLOUT_MIN_READY", 2)  # the Deployment's minReadySeconds
WARMUP = 2.0  # load before the first new pod, and after the last old pod is gone

NODE = "ro-node"
BRIDGE = "ro-br0"
GATEWAY = "10.213.0.1"
VIP = "10.213.1.1"  # the Service's ClusterIP, port 80
INGRESS = "127.0.0.1:8081"  # nginx, in the node's netns
APP_PORT = 8080

# The contenders: the same image and app, only the entrypoint differs.
APP = ["/usr/bin/python3", "-u", "/app.py", "--port", str(APP_PORT)]


CONTENDERS = {
    "tini": {"args": ["/tini", "--"] + APP},
    "dumb-init": {"args": ["/usr/bin/dumb-init"] + APP},
    "preStop sleep": {"args": ["/tini", "--"] + APP, "prestop": DRAIN},
    "drainit": {"args": ["/drainit", "--drain", "%gs" % DRAIN, "--grace", "%gs" % GRACE, "--"] + APP},
    "drainit adaptive": {"args": ["/drainit"] + ADAPTIVE + ["--grace", "%gs" % GRACE, "--"] + APP},
}
ORDER = os.environ.get(
    "ROLLOUT_CONTENDERS",
    "tini,drainit,drainit adaptive" if QUICK else "tini,dumb-init,preStop sleep,drainit,drainit adaptive",
).split(",")
# Scenarios: "new" = hey, a new connection per request; "keepalive" = hey, each
# worker keeping its connection for the whole run; both through the Service and
# through the ingress at the same time.
SCENARIOS = os.environ.get("ROLLOUT_SCENARIOS", "new" if QUICK else "new,keepalive").split(",")
for _name in ORDER:
    if _name not in CONTENDERS:
        sys.exit("lab.py: ROLLOUT_CONTENDERS: unknown %r (known: %s)" % (_name, ", ".join(CONTENDERS)))
for _name in SCENARIOS:
    if _name not in ("new", "keepalive"):
        sys.exit("lab.py: ROLLOUT_SCENARIOS: unknown %r (known: new, keepalive)" % _name)


def log(message):
    print("lab: " + message, file=sys.stderr, flush=True)


def run(*args, check=True, input=None, netns=None):
    """Runs a command (in a netns if asked), returns its stdout."""
    if netns:
        args = ("ip", "netns", "exec", netns) + args
    result = subprocess.run(args, input=input, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(args), result.returncode, result.stderr.strip()))
    return result.stdout


# --- the node's network namespace, from a thread of this process ---------------
libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000


def enter_node_netns():
    """Moves the calling thread (only it) into the node's network namespace."""
    fd = os.open("/var/run/netns/" + NODE, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns " + NODE)
    finally:
        os.close(fd)


def http_status(host, port, path="/", timeout=0.5):
    """One GET, from the node's netns (run in node_threads): the status, or None."""
    import http.client

    try:
        connection = http.client.HTTPConnection(host, port, timeout=timeout)
        connection.request("GET", path)
        status = connection.getresponse().status
        connection.close()
        return status
    except OSError:
        return None


class Lab:
    def __init__(self, image):
        self.image = image
        self.tmp = os.environ.get("LAB_TMP") or tempfile.mkdtemp(prefix="ro-lab.")
        os.makedirs(self.tmp, exist_ok=True)
        self.runc_root = os.path.join(self.tmp, "runc")
        self.next_address = 11
        self.pods = {}  # name -> Pod, the live ones
        self.nginx = None
        self.node_threads = None
        self.lock = threading.Lock()
        self.events = []  # (wall time, kind, pod name), for the current scenario
        self.rootfs = os.path.join(self.tmp, "rootfs")

    # -- the node -----------------------------------------------------------------
    def create_node(self):
        run("ip", "netns", "add", NODE)
        self.node_threads = concurrent.futures.ThreadPoolExecutor(max_workers=2, initializer=enter_node_netns)
        for command in (
            ["ip", "link", "set", "lo", "up"],
            ["ip", "link", "add", BRIDGE, "type", "bridge"],
            ["ip", "addr", "add", GATEWAY + "/24", "dev", BRIDGE],
            ["ip", "link", "set", BRIDGE, "up"],
            # The ClusterIP range routes like a node's default route would; the
            # DNAT in OUTPUT then sends each connection to a pod on the bridge.
            ["ip", "route", "add", VIP.rsplit(".", 1)[0] + ".0/24", "dev", BRIDGE],
        ):
            run(*command, netns=NODE)
        self.write_rules([])
        self.write_nginx([])
        nginx_dir = os.path.join(self.tmp, "nginx")
        self.nginx = subprocess.Popen(
            ["ip", "netns", "exec", NODE, "nginx", "-p", nginx_dir, "-c", os.path.join(nginx_dir, "nginx.conf")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(nginx_dir, "stderr.log"), "w"),
        )
        self.wait_for(lambda: self.node(http_status, *INGRESS.split(":")) is not None, 5, "nginx to listen")

    def node(self, function, *args):
        """Calls function(*args) from a thread inside the node's netns."""
        return self.node_threads.submit(function, *args).result()

    def build_rootfs(self):
        """The image: the image dir's files on an empty base; /usr (python3,
        dumb-init, sleep, libc) is the host's, bind-mounted read-only."""
        os.makedirs(self.rootfs)
        for d in ("proc", "dev", "sys", "tmp", "usr", "etc", "run"):
            os.mkdir(os.path.join(self.rootfs, d))
        for link in ("bin", "lib", "lib64", "sbin"):
            os.symlink("usr/" + link, os.path.join(self.rootfs, link))
        for name in os.listdir(self.image):
            shutil.copy2(os.path.join(self.image, name), os.path.join(self.rootfs, name))

    # -- the Service: kube-proxy's iptables mode --------------------------------------
    def write_rules(self, endpoints):
        """The whole nat table, atomically (iptables-restore), as kube-proxy
        writes it for one Service with these endpoints."""
        lines = ["*nat", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]",
                 ":POSTROUTING ACCEPT [0:0]", ":KUBE-SERVICES - [0:0]", ":KUBE-SVC-RO - [0:0]"]
        chains = ["KUBE-SEP-RO-%s" % ip.replace(".", "-") for ip in endpoints]
        lines += [":%s - [0:0]" % chain for chain in chains]
        lines += [
            '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
            '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
            '-A KUBE-SERVICES -d %s/32 -p tcp -m comment --comment "lab/app cluster IP"'
            ' -m tcp --dport 80 -j KUBE-SVC-RO' % VIP,
        ]
        n = len(endpoints)
        for i, (ip, chain) in enumerate(zip(endpoints, chains)):
            comment = '-m comment --comment "lab/app -> %s:%d"' % (ip, APP_PORT)
            if i < n - 1:
                lines.append("-A KUBE-SVC-RO %s -m statistic --mode random --probability %.11f -j %s"
                             % (comment, 1 / (n - i), chain))
            else:
                lines.append("-A KUBE-SVC-RO %s -j %s" % (comment, chain))
        for ip, chain in zip(endpoints, chains):
            lines.append("-A %s -p tcp -m tcp -j DNAT --to-destination %s:%d" % (chain, ip, APP_PORT))
        lines.append("COMMIT")
        run("iptables-restore", input="\n".join(lines) + "\n", netns=NODE)

    # -- the ingress: nginx as ingress-nginx configures it ------------------------------
    def write_nginx(self, endpoints):
        nginx_dir = os.path.join(self.tmp, "nginx")
        os.makedirs(nginx_dir, exist_ok=True)
        # max_fails=0 (no passive health check) and retries on connection
        # errors and timeouts, 3 tries, upstream keep-alive: ingress-nginx's
        # defaults; a connect timeout of 1 s instead of its 5 s.
        servers = "".join("    server %s:%d max_fails=0;\n" % (ip, APP_PORT) for ip in endpoints)
        if not endpoints:
            servers = "    server 127.0.0.1:1 down;\n"
        conf = """worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  log_format lab '$msec $status $upstream_addr $upstream_status';
  access_log {d}/access.log lab;
  upstream app {{
{servers}    keepalive 320;
    keepalive_timeout 60s;
    keepalive_requests 10000;
  }}
  server {{
    listen {ingress} default_server;
    keepalive_timeout 75s;
    location / {{
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_connect_timeout 1s;
      proxy_read_timeout 10s;
      proxy_next_upstream error timeout;
      proxy_next_upstream_tries 3;
    }}
  }}
}}
""".format(d=nginx_dir, servers=servers, ingress=INGRESS)
        with open(os.path.join(nginx_dir, "nginx.conf.new"), "w") as f:
            f.write(conf)
        os.replace(os.path.join(nginx_dir, "nginx.conf.new"), os.path.join(nginx_dir, "nginx.conf"))
        if self.nginx is not None:
            # The reload: new workers with the new upstream list; the old ones
            # finish their requests and close their pooled connections.
            with open(os.path.join(nginx_dir, "nginx.pid")) as f:
                os.kill(int(f.read()), signal.SIGHUP)

    def set_endpoints(self, endpoints):
        self.write_rules(endpoints)
        self.write_nginx(endpoints)

    # -- pods -----------------------------------------------------------------------
    def create_pod(self, contender, generation):
        with self.lock:
            k = self.next_address
            self.next_address += 1
        if k > 250:
            raise RuntimeError("out of pod addresses")
        pod = Pod(self, k, contender, generation)
        self.pods[pod.name] = pod
        pod.start()
        return pod

    def wait_for(self, condition, seconds, what):
        deadline = time.monotonic() + seconds
        while not condition():
            if time.monotonic() > deadline:
                raise RuntimeError("timed out waiting for " + what)
            time.sleep(0.05)

    def event(self, kind, pod):
        with self.lock:
            self.events.append((time.time(), kind, pod))

    # -- cleanup ---------------------------------------------------------------------
    def close(self):
        for pod in list(self.pods.values()):
            pod.destroy()
        if self.nginx is not None:
            self.nginx.terminate()  # nginx's fast shutdown: the master stops its workers
            try:
                self.nginx.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.nginx.kill()
                self.nginx.wait()
        # Anything left in the node's netns (a worker, a load generator).
        for pid in run("ip", "netns", "pids", NODE, check=False).split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass
        if self.node_threads is not None:
            self.node_threads.shutdown()
        subprocess.run(["ip", "netns", "del", NODE], capture_output=True)
        shutil.rmtree(self.tmp, ignore_errors=True)


class Pod:
    """A pod: a netns on the bridge and a runc container in it."""

    def __init__(self, lab, k, contender, generation):
        self.lab = lab
        self.k = k
        self.name = "ro-p%d" % k  # the netns and the container id
        self.ip = "10.213.0.%d" % k
        self.contender = contender
        self.generation = generation
        self.dir = os.path.join(lab.tmp, self.name)
        self.process = None
        self.exited = None  # wall time

    def start(self):
        lab = self.lab
        veth = "ro-v%d" % self.k
        run("ip", "netns", "add", self.name)
        run("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", self.name, netns=NODE)
        run("ip", "link", "set", veth, "master", BRIDGE, "up", netns=NODE)
        run("ip", "addr", "add", self.ip + "/24", "dev", "eth0", netns=self.name)
        run("ip", "link", "set", "eth0", "up", netns=self.name)
        run("ip", "link", "set", "lo", "up", netns=self.name)
        run("ip", "route", "add", "default", "via", GATEWAY, netns=self.name)

        os.makedirs(self.dir)
        run("runc", "spec", "--bundle", self.dir)
        with open(os.path.join(self.dir, "config.json")) as f:
            config = json.load(f)
        config["root"] = {"path": lab.rootfs, "readonly": True}
        process = config["process"]
        process["terminal"] = False
        process["args"] = CONTENDERS[self.contender]["args"]
        process["env"] = ["PATH=/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE=1"]
        # (runc's default of 1024 is enough; above the caller's hard limit, runc fails)
        process.pop("rlimits", None)
        config["hostname"] = self.name
        config["mounts"].append({"destination": "/usr", "type": "bind", "source": "/usr",
                                 "options": ["rbind", "ro"]})
        config["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                                 "options": ["nosuid", "nodev", "mode=1777"]})
        for namespace in config["linux"]["namespaces"]:
            if namespace["type"] == "network":
                namespace["path"] = "/var/run/netns/" + self.name
        with open(os.path.join(self.dir, "config.json"), "w") as f:
            json.dump(config, f)
        self.log_path = os.path.join(self.dir, "container.log")
        self.process = subprocess.Popen(
            ["runc", "--root", lab.runc_root, "run", "--bundle", self.dir, self.name],
            stdin=subprocess.DEVNULL, stdout=open(self.log_path, "w"), stderr=subprocess.STDOUT,
        )
        lab.event("created", self.name)

    def wait_ready(self):
        """The kubelet's readiness probe: GET / must answer 200; tried every
        PROBE seconds from the container's start (initialDelaySeconds 0)."""
        deadline = time.monotonic() + 20
        while self.lab.node(http_status, self.ip, APP_PORT) != 200:
            if self.process.poll() is not None:
                raise RuntimeError("%s exited before it was ready:\n%s" % (self.name, open(self.log_path).read()))
            if time.monotonic() > deadline:
                raise RuntimeError("%s is not ready after 20 s:\n%s" % (self.name, open(self.log_path).read()))
            time.sleep(PROBE)
        self.lab.event("ready", self.name)

    def kubelet_stop(self):
        """What the kubelet does on deletion: the preStop hook if any, SIGTERM
        to PID 1, SIGKILL at the grace period; then the sandbox goes (CNI DEL:
        the netns and its veth), SANDBOX_TEARDOWN after the container's exit
        (the kubelet notices the exit at its next relist, every second).
        Until then the pod's address refuses connections; after, it is gone
        and connections to it time out."""
        lab = self.lab
        t0 = time.monotonic()
        lab.event("deleted", self.name)
        # The connections that the endpoint's removal does not move: still
        # established to this pod half a second after the removal reached the
        # rules and the ingress (conntrack's table, in the node's netns).
        self.pinned = None
        timer = threading.Timer(LAG + 0.5, self.count_pinned)
        timer.start()
        hook = CONTENDERS[self.contender].get("prestop")
        if hook:
            subprocess.run(["runc", "--root", lab.runc_root, "exec", self.name, "/bin/sleep", "%g" % hook],
                           capture_output=True, timeout=GRACE)
        subprocess.run(["runc", "--root", lab.runc_root, "kill", self.name, "TERM"], capture_output=True)
        lab.event("SIGTERM to PID 1", self.name)
        try:
            self.process.wait(timeout=max(0.0, GRACE - (time.monotonic() - t0)))
        except subprocess.TimeoutExpired:
            lab.event("SIGKILL by the kubelet", self.name)
            subprocess.run(["runc", "--root", lab.runc_root, "kill", self.name, "KILL"], capture_output=True)
            self.process.wait()
        self.exited = time.time()
        lab.event("container exited", self.name)
        time.sleep(SANDBOX_TEARDOWN)
        self.destroy()
        lab.event("sandbox removed", self.name)
        timer.join()

    def count_pinned(self):
        if self.process.poll() is not None:
            return  # the app is gone: conntrack's entries to it say nothing

        out = run("conntrack", "-L", "-p", "tcp", "--state", "ESTABLISHED", "--reply-src", self.ip,
                  netns=NODE, check=False)
        self.pinned = sum(1 for line in out.splitlines() if line.startswith("tcp"))

    def app_times(self):
        """From the app's log: when it got its stop signal, when it exited."""
        text = open(self.log_path).read() if os.path.exists(self.log_path) else ""
        stop = re.search(r"^app: SIG\w+ at ([0-9.]+)", text, re.M)
        return (float(stop.group(1)) if stop else None), text

    def destroy(self):
        if self.process is not None and self.process.poll() is None:
            subprocess.run(["runc", "--root", self.lab.runc_root, "kill", self.name, "KILL"], capture_output=True)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        subprocess.run(["runc", "--root", self.lab.runc_root, "delete", "--force", self.name], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)
        self.lab.pods.pop(self.name, None)


class EndpointController(threading.Thread):
    """Applies each endpoint change to the Service rules and the ingress
    `lag` seconds after it happened, in order (kube-proxy's sync and the
    ingress reload, which see the EndpointSlice late)."""

    def __init__(self, lab, lag):
        super().__init__(daemon=True)
        self.lab, self.lag = lab, lag
        self.queue = []
        self.cond = threading.Condition()
        self.error = None
        self.start()

    def change(self, endpoints, what, pod):
        with self.cond:
            self.queue.append((time.monotonic() + self.lag, list(endpoints), what, pod))
            self.cond.notify()

    def idle(self):
        with self.cond:
            return not self.queue

    def run(self):
        while True:
            with self.cond:
                while not self.queue:
                    self.cond.wait()
                due, endpoints, what, pod = self.queue[0]
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            try:
                self.lab.set_endpoints(endpoints)
                self.lab.event(what, pod)
            except Exception as e:  # reported by the scenario
                self.error = e
            with self.cond:
                self.queue.pop(0)


# --- the load ---------------------------------------------------------------------
class HeySlices(threading.Thread):
    """hey, a new connection per request (-disable-keepalive), at a fixed
    concurrency and rate, as one 1-second run started every second, so that
    each second's answers and failures are counted exactly (hey reports
    errors only in its summary)."""

    def __init__(self, url, start, out_dir):
        super().__init__(daemon=True)
        self.url, self.start_at, self.out_dir = url, start, out_dir
        self.stop = threading.Event()
        self.procs = []
        os.makedirs(out_dir, exist_ok=True)
        self.start()

    def run(self):
        second = 0
        while not self.stop.is_set():
            if self.stop.wait(max(0.0, self.start_at + second - time.time())):
                break
            out = open(os.path.join(self.out_dir, "%04d.txt" % second), "w")
            self.procs.append(subprocess.Popen(
                ["ip", "netns", "exec", NODE, "hey", "-z", "1s", "-c", str(CONCURRENCY), "-q", str(RATE),
                 "-t", "%g" % TIMEOUT, "-disable-keepalive", self.url],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT))
            out.close()
            second += 1

    def finish(self):
        self.stop.set()
        self.join()
        for proc in self.procs:
            proc.wait()
        seconds = []
        for name in sorted(os.listdir(self.out_dir)):
            seconds.append(parse_hey(open(os.path.join(self.out_dir, name)).read()))
        return seconds


def parse_hey(text):
    """hey's summary -> {"ok": N, "failed": N, "kinds": {kind: N}, "slowest": s}."""
    ok, failed, kinds = 0, 0, {}
    section = None
    slowest = re.search(r"Slowest:\s+([0-9.]+) secs", text)
    for line in text.splitlines():
        if line.startswith("Status code distribution"):
            section = "status"
        elif line.startswith("Error distribution"):
            section = "errors"
        m = re.match(r"\s+\[(\d+)\]\s+(.*)", line)
        if not m or section is None:
            continue
        count, rest = int(m.group(1)), m.group(2)
        if section == "status":
            if 200 <= count < 300:
                ok += int(rest.split()[0])
            else:
                failed += int(rest.split()[0])
                kinds["HTTP %d" % count] = kinds.get("HTTP %d" % count, 0) + int(rest.split()[0])
        else:
            failed += count
            kind = error_kind(rest)
            kinds[kind] = kinds.get(kind, 0) + count
    return {"ok": ok, "failed": failed, "kinds": kinds, "slowest": float(slowest.group(1)) if slowest else 0.0}


def error_kind(message):
    for needle, kind in (("refused", "connection refused"), ("reset", "connection reset"),
                         ("no route", "no route to host"), ("Timeout", "timeout"), ("timeout", "timeout"),
                         ("EOF", "connection closed (EOF)")):
        if needle in message:
            return kind
    return message[-60:]


class HeyKeepalive:
    """hey with keep-alive (Go's client, its default): CONCURRENCY workers,
    each on a connection it keeps for the whole run (conntrack pins it to one
    pod), at RATE requests/s; stopped by SIGINT, after which hey reports.
    Only totals: hey reports errors in its summary alone, and slicing the run
    would reopen the connections every second."""

    def __init__(self, url, out_path):
        self.out_path = out_path
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", NODE, "hey", "-z", "600s", "-c", str(CONCURRENCY), "-q", str(RATE),
             "-t", "%g" % TIMEOUT, url],
            stdin=subprocess.DEVNULL, stdout=open(out_path, "w"), stderr=subprocess.STDOUT)

    def finish(self):
        self.proc.send_signal(signal.SIGINT)  # hey stops and reports
        self.proc.wait(timeout=30)
        text = open(self.out_path).read()
        if "Status code distribution" not in text and "Error distribution" not in text:
            raise RuntimeError("hey did not report:\n" + text)
        return parse_hey(text)


# --- one rolling update -------------------------------------------------------------
def rollout(lab, contender, scenario):
    lab.events = []
    log("%s, %s load: %d old pods" % (contender, scenario, REPLICAS))
    subprocess.run(["ip", "netns", "exec", NODE, "conntrack", "-F"], capture_output=True)
    old = [lab.create_pod(contender, 1) for _ in range(REPLICAS)]
    for pod in old:
        pod.wait_ready()
    endpoints = [pod.ip for pod in old]
    lab.set_endpoints(endpoints)
    time.sleep(0.5)  # the old workers of nginx's reload are gone
    controller = EndpointController(lab, LAG)

    access_log = os.path.join(lab.tmp, "nginx", "access.log")
    access_from = os.path.getsize(access_log) if os.path.exists(access_log) else 0
    start = int(time.time()) + 1  # load seconds are wall-clock seconds from here
    out = os.path.join(lab.tmp, "load-%s-%s" % (contender.replace(" ", "-"), scenario))
    os.makedirs(out)
    if scenario == "new":
        streams = {"service": HeySlices("http://%s/" % VIP, start, os.path.join(out, "service")),
                   "ingress": HeySlices("http://%s/" % INGRESS, start, os.path.join(out, "ingress"))}
    else:
        streams = {"service": HeyKeepalive("http://%s/" % VIP, os.path.join(out, "service.txt")),
                   "ingress": HeyKeepalive("http://%s/" % INGRESS, os.path.join(out, "ingress.txt"))}
    time.sleep(max(0.0, start + WARMUP - time.time()))

    # maxSurge 1, maxUnavailable 0: a new pod; once ready, its endpoint is
    # added (it lands after the lag too); once it has been ready for
    # minReadySeconds (available), an old pod is deleted: the kubelet's stop
    # and the endpoint's removal start at the same instant, the removal lands
    # after the lag.
    t_rollout = time.time()
    stoppers = []
    for i in range(REPLICAS):
        new = lab.create_pod(contender, 2)
        new.wait_ready()
        endpoints.append(new.ip)
        controller.change(endpoints, "endpoint added", new.name)
        time.sleep(MIN_READY)
        victim = old[i]
        endpoints.remove(victim.ip)
        controller.change(endpoints, "endpoint removed", victim.name)
        stopper = threading.Thread(target=victim.kubelet_stop, daemon=True)
        stopper.start()
        stoppers.append(stopper)
    for stopper in stoppers:
        stopper.join()
    t_done = max(pod.exited for pod in old)
    lab.wait_for(controller.idle, LAG + 5, "the endpoint controller")
    if controller.error:
        raise controller.error
    time.sleep(WARMUP)

    results = {}
    for path, stream in streams.items():
        results[path] = stream.finish()
    logs, stops, stop_times = {}, [], {}
    deleted = {pod: t for t, kind, pod in lab.events if kind == "deleted"}
    for pod in old:
        stop, text = pod.app_times()
        logs[pod.name] = text
        stops.append(round(stop - deleted[pod.name], 3) if stop else None)
        if stop:
            stop_times[pod.name] = round(stop - t_rollout, 3)
    for pod in [p for p in lab.pods.values() if p.generation == 2]:
        pod.destroy()

    # The ingress's own view: requests it passed to a second pod after an
    # error or a timeout on the first (proxy_next_upstream), and how they ended.
    retried = {"answered": 0, "failed": 0}
    with open(access_log) as f:
        f.seek(access_from)
        for line in f:
            fields = line.split(" ", 3)
            if len(fields) == 4 and "," in fields[3]:
                retried["answered" if fields[1].startswith("2") else "failed"] += 1

    runs = []
    for path, r in results.items():
        if scenario == "new":
            ok = sum(s["ok"] for s in r)
            failed = sum(s["failed"] for s in r)
            kinds = {}
            for s in r:
                for k, v in s["kinds"].items():
                    kinds[k] = kinds.get(k, 0) + v
            timeline = [[round(start + j - t_rollout, 3), s["ok"], s["failed"]] for j, s in enumerate(r)]
            slowest = max(s["slowest"] for s in r)
        else:
            ok, failed, kinds = r["ok"], r["failed"], r["kinds"]
            timeline = []
            slowest = r["slowest"]
        runs.append({
            "init": contender,
            "path": path,
            "client": "hey, a new connection per request" if scenario == "new" else "hey, keep-alive",
            "requests": ok + failed,
            "failed": failed,
            "failures": kinds,
            "slowest_answer_s": slowest,
            "rollout_s": round(t_done - t_rollout, 2),
            "stop_signal_after_deletion_s": stops,
            # per old pod, all paths together:
            "established_after_removal": [pod.pinned for pod in old],
            "timeline": timeline,  # [second from the rollout's start, answered, failed]
        })
        if path == "ingress":
            runs[-1]["ingress_retried"] = retried
        log("  %-8s %6d requests, %4d failed %s; rollout %.1f s; the app's stop signal at %s s after deletion"
            % (path, ok + failed, failed, json.dumps(kinds) if kinds else "", t_done - t_rollout, stops))
    events = [[round(t - t_rollout, 3), kind, pod] for t, kind, pod in lab.events]
    return runs, {"init": contender, "scenario": scenario, "events": events, "stops": stop_times, "logs": logs}


def cpu_times():
    """(busy, total) jiffies of all CPUs, from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return sum(fields) - idle, sum(fields)


def machine():
    cpus = os.cpu_count()
    model = ""
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    with open("/proc/loadavg") as f:
        load = f.read().split()[0]
    return "%s, Linux %s, %d CPUs (%s), load average %s at the start (the machine is shared)" % (
        os.uname().nodename, os.uname().release, cpus, model, load)


def main():
    image, out_json = sys.argv[1], sys.argv[2]
    lab = Lab(image)

    def stop(signum, frame):
        raise KeyboardInterrupt("signal %d" % signum)

    signal.signal(signal.SIGTERM, stop)
    runs, details = [], []
    started = time.time()
    cpu_start = cpu_times()
    try:
        lab.build_rootfs()
        lab.create_node()
        for scenario in SCENARIOS:
            for contender in ORDER:
                r, d = rollout(lab, contender, scenario)
                runs += r
                details.append(d)
    finally:
        lab.close()
    cpu_end = cpu_times()
    busy = (cpu_end[0] - cpu_start[0]) / max(1, cpu_end[1] - cpu_start[1])
    result = {
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
        "cpu_busy": "%.0f%% of the CPUs busy during the run (every process: the lab's and others')" % (100 * busy),
        "duration_s": round(time.time() - started),
        "quick": QUICK,
        "lag_s": LAG,
        "grace_s": GRACE,
        "replicas": REPLICAS,
        "readiness_probe_period_s": PROBE,
        "min_ready_s": MIN_READY,
        "sandbox_teardown_s": SANDBOX_TEARDOWN,
        "load": "per path: %d workers at %d requests/s each (%d requests/s), request timeout %g s"
                % (CONCURRENCY, RATE, CONCURRENCY * RATE, TIMEOUT),
        "inits": {name: " ".join(CONTENDERS[name]["args"]) + (
            "  (preStop: exec sleep %g, then SIGTERM)" % CONTENDERS[name]["prestop"]
            if "prestop" in CONTENDERS[name] else "") for name in ORDER},
        "runs": runs,
        "details": details,
    }
    with open(out_json, "w") as f:
        json.dump(result, f, indent=1)
    log("wrote %s (%.0f s)" % (out_json, time.time() - started))


main()
