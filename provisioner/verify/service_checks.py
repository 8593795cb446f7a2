"""What verify does for the inventory's services, in three execs per node (all nodes at once):

1. **serve**: every endpoint pod of the node listens on its target port (TCP or UDP) for a while, and
   answers each connection (datagram) with ``NODE/POD PEER``: who answered, and the address it saw the
   client come from;
2. **ask**: every pod of every node asks each service once by its cluster IP and once by name
   (``NAME.NAMESPACE``, through the search path of resolv.conf; only where a cluster DNS answers for
   kube-dns.kube-system); each node's first pod also resolves each full name and one pod name, asks each
   service SPREAD times by IP (across the cluster every endpoint must answer), and asks each service
   without endpoints, which must be refused at once, not time out;
3. **stop**: the listeners are stopped (they also end by themselves after LIFETIME seconds).

The scripts are built here (pure: inputs in, text out); values reach the node as quoted arguments, and the
asks as one JSON argument read by python3.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from ..cluster_dns import pod_a_record, service_fqdn
from ..inventory import Inventory, Node
from ..inventory.model import Service
from ..shell import quote

LIFETIME = 600    # seconds a listener lives at most (verify stops them when it is done)
WAIT = 3          # seconds an ask waits for an answer: "refused" comes at once, a hang takes this long
SERVE_DIR = "/tmp/.provision-verify-svc."  # mktemp -d adds a random suffix

SERVE = ("import socket,sys,time,os\n"
         "ip,port,proto,who,secs,ready=sys.argv[1],int(sys.argv[2]),sys.argv[3],sys.argv[4],float(sys.argv[5]),sys.argv[6]\n"
         "s=socket.socket(socket.AF_INET6 if ':' in ip else socket.AF_INET,socket.SOCK_STREAM if proto=='TCP' else socket.SOCK_DGRAM)\n"
         "s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
         "s.bind((ip,port))\n"
         "proto=='TCP' and s.listen(128)\n"
         "open(ready,'w').write(str(os.getpid()))\n"
         "end=time.time()+secs\n"
         "while time.time()<end:\n"
         " s.settimeout(max(0.1,end-time.time()))\n"
         " try:\n"
         "  if proto=='TCP':\n"
         "   c,a=s.accept();c.sendall((who+' '+a[0]+'\\n').encode());c.close()\n"
         "  else:\n"
         "   d,a=s.recvfrom(512);s.sendto((who+' '+a[0]+'\\n').encode(),a)\n"
         " except OSError:\n"
         "  pass\n")

ASK = ("import socket,sys,json\n"
       "def ask(c):\n"
       " kind=socket.SOCK_STREAM if c['proto']=='TCP' else socket.SOCK_DGRAM\n"
       " try:\n"
       "  fam,_,_,_,addr=socket.getaddrinfo(c['host'],c['port'],0,kind)[0]\n"
       "  s=socket.socket(fam,kind);s.settimeout(c['wait'])\n"
       "  try:\n"
       "   s.connect(addr)\n"
       "   if c['proto']=='UDP':\n"
       "    s.send(b'?')\n"
       "   return s.recv(512).decode(errors='replace').strip() or 'empty'\n"
       "  finally:\n"
       "   s.close()\n"
       " except ConnectionRefusedError:\n"
       "  return 'refused'\n"
       " except socket.timeout:\n"
       "  return 'timeout'\n"
       " except socket.gaierror as e:\n"
       "  return 'noname' if e.errno==socket.EAI_NONAME else 'dns-silent' if e.errno==socket.EAI_AGAIN else 'dns-error'\n"
       " except OSError as e:\n"
       "  return 'error:'+(e.strerror or type(e).__name__).replace(' ','-')\n"
       "def resolve(c):\n"
       " try:\n"
       "  return ','.join(sorted({a[4][0] for a in socket.getaddrinfo(c['host'],None)}))\n"
       " except socket.gaierror as e:\n"
       "  return 'noname' if e.errno==socket.EAI_NONAME else 'dns-silent' if e.errno==socket.EAI_AGAIN else 'dns-error'\n"
       "dns=True\n"
       "for i,c in enumerate(json.loads(sys.argv[1])):\n"
       " for _ in range(c.get('times',1)):\n"
       "  if c['kind']=='dns-probe':\n"
       "   got=resolve(c);dns=got==c['want']\n"
       "  elif c['named'] and not dns:\n"
       "   got='no-dns'\n"
       "  else:\n"
       "   got=resolve(c) if c['kind']=='resolve' else ask(c)\n"
       "  print('answer',i,got,flush=True)\n")


@dataclass(frozen=True)
class Listener:
    pod: str
    ip: str
    port: int
    protocol: str
    who: str  # NODE/POD


@dataclass
class Ask:
    """One question a pod asks, and what it got (one answer per time)."""

    kind: str          # "ip", "name", "spread", "refused", "resolve", "pod-name", "dns-probe"
    service: str       # namespace/name (or the pod name asked for)
    host: str          # address or name asked
    port: int = 0
    protocol: str = "TCP"
    times: int = 1
    want: str = ""     # resolve: the address the name must give
    answers: list[str] = field(default_factory=list)

    def spec(self) -> dict[str, Any]:
        kind = "dns-probe" if self.kind == "dns-probe" else "resolve" if self.kind in ("resolve", "pod-name") else "ask"
        return {"kind": kind, "host": self.host, "port": self.port, "proto": self.protocol, "times": self.times,
                "wait": WAIT, "want": self.want, "named": self.kind in ("name", "resolve", "pod-name")}


def checked(inv: Inventory, hosts: list[str]) -> tuple[list[Service], dict[str, str]]:
    """The services verify checks, and those it leaves out with why (an endpoint on a node not being checked:
    nothing would listen there, so an answer could not be told from a failure)."""
    keep, left = [], {}
    for s in inv.services:
        away = sorted({e.node for e in s.endpoints if e.node not in hosts})
        if away:
            left[s.key] = f"endpoints on {', '.join(away)}, not checked in this run (--limit)"
        else:
            keep.append(s)
    return keep, left


def listeners(services: list[Service], node: Node) -> list[Listener]:
    """What the node's endpoint pods listen on, once per pod, port and protocol."""
    out: dict[tuple[str, int, str], Listener] = {}
    for s in services:
        for e in s.endpoints:
            if e.node == node.name:
                for p in s.ports:
                    out.setdefault((e.pod, p.target_port, p.protocol),
                                   Listener(e.pod, str(e.ip), p.target_port, p.protocol, f"{e.node}/{e.pod}"))
    return list(out.values())


def serve_script(mine: list[Listener]) -> str:
    """Exec 1: start the listeners in a fresh private directory (printed as ``svcdir DIR``), then wait until each
    has bound its port; ``not-ready POD PORT PROTO`` for one that did not (its error follows)."""
    q = quote
    lines = [f"d=$(mktemp -d {SERVE_DIR}XXXXXXXX) && echo svcdir \"$d\""]
    for i, x in enumerate(mine):
        lines.append(f"( setsid ip netns exec {q(x.pod)} python3 -c {q(SERVE)} {q(x.ip)} {x.port} {q(x.protocol)} "
                     f"{q(x.who)} {LIFETIME} \"$d/ready{i}\" > \"$d/log{i}\" 2>&1 < /dev/null & )")
    for i, x in enumerate(mine):
        lines.append(f"i=0; while [ ! -s \"$d/ready{i}\" ] && [ $i -lt 150 ]; do sleep 0.1; i=$((i+1)); done; "
                     f"[ -s \"$d/ready{i}\" ] || {{ echo not-ready {q(x.pod)} {x.port} {q(x.protocol)}; "
                     f"tail -n 3 \"$d/log{i}\"; }}")
    return "\n".join(lines) + "\n"


def stop_script(where: str) -> str:
    """Exec 3: stop the listeners (their pids are in the ready files) and remove the directory."""
    if not where.startswith(SERVE_DIR) or not all(c.isalnum() or c in "/._-" for c in where):
        raise ValueError(f"not a verify directory: {where!r}")
    q = quote
    return (f"for f in {q(where)}/ready*; do [ -s \"$f\" ] && kill \"$(cat \"$f\")\" 2>/dev/null; done; "
            f"rm -rf {q(where)}\n")


def spread_times(endpoints: int, askers: int) -> int:
    """How often each asking node asks a service by IP so that, across the cluster, an endpoint that gets its
    share is missed with odds under one in a million: (1 - 1/E)^(N·k) · E < 1e-6."""
    if endpoints <= 1:
        return 1
    total = math.log(endpoints * 1e6) / -math.log(1 - 1 / endpoints)
    return max(2, math.ceil(total / max(1, askers)))


def asks(inv: Inventory, services: list[Service], node: Node, pods: dict[str, str | None], askers: int,
         peer_pod: str | None) -> dict[str, list[Ask]]:
    """``{pod: [Ask]}``: what each of the node's pods (with an address) asks. ``peer_pod``: the address of a pod on
    another node, whose pod name the first pod resolves."""
    domain = inv.cluster.domain
    out: dict[str, list[Ask]] = {}
    named = [p for p in node.pods if pods.get(p.name)]
    probe = service_fqdn("kube-dns", "kube-system", domain)
    for k, pod in enumerate(named):
        mine = out.setdefault(pod.name, [])
        for s in services:
            p = s.ports[0]
            if not s.endpoints:
                if k == 0:
                    mine.append(Ask("refused", s.key, str(s.cluster_ip), p.port, p.protocol))
                continue
            mine += [Ask("ip", s.key, str(s.cluster_ip), q.port, q.protocol) for q in s.ports]
            if k == 0:
                mine.append(Ask("spread", s.key, str(s.cluster_ip), p.port, p.protocol,
                                spread_times(len(s.endpoints), askers)))
        # names last, after a probe: is a cluster DNS there at all? (without one, each name would wait it out)
        mine.append(Ask("dns-probe", "kube-system/kube-dns", probe, want=str(inv.cluster.dns_ip)))
        mine += [Ask("name", s.key, f"{s.name}.{s.namespace}", s.ports[0].port, s.ports[0].protocol)
                 for s in services if s.endpoints]
        if k == 0:
            mine += [Ask("resolve", s.key, service_fqdn(s.name, s.namespace, domain), want=str(s.cluster_ip))
                     for s in services]
            if peer_pod:
                name = pod_a_record(peer_pod, "default", domain)
                mine.append(Ask("pod-name", name, name, want=peer_pod))
    return out


def ask_script(by_pod: dict[str, list[Ask]]) -> str:
    """Exec 2: each pod's asks in one python3 in that pod, the pods one after the other; each answer is a line
    ``answer I TEXT`` after a line ``pod POD``."""
    q = quote
    lines = []
    for pod, mine in by_pod.items():
        if mine:
            # a resolver that gives up soon (glibc's default is 5 s, twice, per nameserver): an answer is quick
            lines.append(f"echo pod {q(pod)}; RES_OPTIONS='timeout:2 attempts:1' ip netns exec {q(pod)} python3 -c {q(ASK)} "
                         f"{q(json.dumps([a.spec() for a in mine]))} || echo failed {q(pod)}")
    return "\n".join(lines) + "\n"


def read_answers(stdout: str, by_pod: dict[str, list[Ask]]) -> list[str]:
    """Fill each Ask's answers from exec 2's output; returns the pods whose python3 failed."""
    pod, failed = None, []
    for line in stdout.splitlines():
        words = line.split(" ", 2)
        if words[0] == "pod" and len(words) == 2:
            pod = words[1]
        elif words[0] == "failed" and len(words) == 2:
            failed.append(words[1])
        elif words[0] == "answer" and len(words) == 3 and pod in by_pod and words[1].isdigit():
            i = int(words[1])
            if i < len(by_pod[pod]):
                by_pod[pod][i].answers.append(words[2])
    return failed
