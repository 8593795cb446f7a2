#!/usr/bin/env python3
"""A small stand-in for iproute2's ``ip``, for the runner's unit tests: state in a JSON file, answers in ``-json``.

It keeps links, addresses, routes and namespaces in ``$FAKE_IP_STATE`` and knows
the commands the pod-network modules send (``link add/del/set``, ``addr add/del``,
``route replace/del``, ``netns add/del/list``, ``neigh flush``), each with
``-n NETNS``. ``$FAKE_IP_FAIL`` names one command line that fails. Anything else exits 2 with "fake ip: unsupported", so a test
never passes by accident. Errors look like the real ones ("RTNETLINK answers:
File exists", exit 2).
"""

import json
import os
import sys

STATE = os.environ["FAKE_IP_STATE"]


def load() -> dict:
    try:
        with open(STATE) as fh:
            return json.load(fh)
    except FileNotFoundError:
        return {"netns": [], "ns": {"": {"links": {}, "routes": []}}, "next_index": 10}


def fail(message: str, rc: int = 2):
    print(message, file=sys.stderr)
    sys.exit(rc)


def main(argv: list[str]) -> None:
    if os.environ.get("FAKE_IP_FAIL") and " ".join(argv) == os.environ["FAKE_IP_FAIL"]:
        fail("RTNETLINK answers: File exists")  # the one command the test wants to fail
    s = load()
    ns, as_json, details, oneline = "", False, False, False
    while argv and argv[0].startswith("-"):
        flag = argv.pop(0)
        if flag == "-n":
            ns = argv.pop(0)
        elif flag in ("-json", "-j"):
            as_json = True
        elif flag == "-d":
            details = True
        elif flag == "-o":  # one line per address, as the boot script reads it
            oneline = True
        elif flag == "-4":
            pass
        else:
            fail(f"fake ip: unsupported option {flag}")
    if ns and ns not in s["netns"]:
        fail(f'Cannot open network namespace "{ns}": No such file or directory', 1)
    space = s["ns"].setdefault(ns, {"links": {}, "routes": []})
    obj, verb, rest = argv[0], (argv[1] if len(argv) > 1 else "show"), argv[2:]
    out = {"link": link, "addr": addr, "route": route, "netns": netns, "neigh": neigh}.get(obj)
    if out is None:
        fail(f"fake ip: unsupported object {obj}")
    result = out(s, space, ns, verb, rest, details)
    if oneline and obj == "addr" and result is not None:
        for one in result:
            for a in one["addr_info"]:
                print(f"{one['ifindex']}: {one['ifname']}    inet {a['local']}/{a['prefixlen']} scope global {one['ifname']}")
    elif as_json and result is not None:
        print(json.dumps(result))
    with open(STATE, "w") as fh:
        json.dump(s, fh)


def link_json(links: dict, details: bool) -> list[dict]:
    return [{"ifindex": v["index"], "ifname": k, "flags": ["UP"] if v["up"] else [], "mtu": v.get("mtu", 1500),
             **({"master": v["master"]} if v.get("master") else {}),
             **({"link_index": v["peer"]} if v.get("peer") else {}),
             **({"linkinfo": {"info_kind": v["kind"],
                              **({"info_slave_kind": "bridge", "info_slave_data": {"hairpin": bool(v.get("hairpin"))}}
                                 if v.get("master") else {})}} if details and v["kind"] else {})}
            for k, v in links.items()]


def link(s, space, ns, verb, rest, details):
    links = space["links"]
    if verb == "show" and rest:
        if rest[0] not in links:
            fail(f'Device "{rest[0]}" does not exist.', 1)
        return link_json({rest[0]: links[rest[0]]}, details)
    if verb == "show":
        return link_json(links, details)
    if verb == "add":
        name, kind = rest[0], rest[rest.index("type") + 1]
        if name in links:
            fail("RTNETLINK answers: File exists")
        s["next_index"] += 1
        links[name] = {"kind": kind, "up": False, "master": None, "index": s["next_index"], "peer": None}
        if kind == "veth":
            peer, peer_ns = rest[rest.index("peer") + 2], rest[rest.index("netns") + 1] if "netns" in rest else ns
            s["next_index"] += 1
            s["ns"].setdefault(peer_ns, {"links": {}, "routes": []})["links"][peer] = {
                "kind": "veth", "up": False, "master": None, "index": s["next_index"], "peer": links[name]["index"]}
            links[name]["peer"] = s["next_index"]
        return None
    if verb == "del":
        if rest[0] not in links:
            fail(f'Cannot find device "{rest[0]}"', 1)
        del links[rest[0]]
        space["routes"] = [r for r in space["routes"] if r.get("dev") != rest[0]]
        return None
    if verb == "set":
        if rest[0] not in links:
            fail(f'Cannot find device "{rest[0]}"', 1)
        words = rest[1:]
        if "up" in words:
            links[rest[0]]["up"] = True
        if "master" in words:
            links[rest[0]]["master"] = words[words.index("master") + 1]
        if "mtu" in words:
            links[rest[0]]["mtu"] = int(words[words.index("mtu") + 1])
        if words[:2] == ["type", "bridge_slave"]:
            if not links[rest[0]].get("master"):
                fail("Error: argument \"bridge_slave\" is wrong: not a bridge port", 2)
            links[rest[0]]["hairpin"] = words[words.index("hairpin") + 1] == "on"
        return None
    fail(f"fake ip: unsupported link {verb}")


def addr(s, space, ns, verb, rest, details):
    links = space["links"]
    if verb == "show" and "dev" in rest:
        if rest[rest.index("dev") + 1] not in links:
            fail(f'Device "{rest[rest.index("dev") + 1]}" does not exist.', 1)
        links = {rest[rest.index("dev") + 1]: links[rest[rest.index("dev") + 1]]}
    if verb == "show":  # like iproute2: each link's own attributes, then its addresses
        return [dict(one, addr_info=[{"family": "inet", "local": a.split("/")[0], "prefixlen": int(a.split("/")[1])}
                                     for a in links[one["ifname"]].get("addrs", [])])
                for one in link_json(links, details)]
    cidr, dev = rest[0], rest[rest.index("dev") + 1]
    if dev not in links:
        fail(f'Cannot find device "{dev}"', 1)
    have = links[dev].setdefault("addrs", [])
    if verb == "add":
        if cidr in have:
            fail("RTNETLINK answers: File exists")
        have.append(cidr)
        return None
    if verb == "replace":
        if cidr not in have:
            have.append(cidr)
        return None
    if verb == "del":
        if cidr not in have:
            fail("RTNETLINK answers: Cannot assign requested address")
        have.remove(cidr)
        return None
    fail(f"fake ip: unsupported addr {verb}")


def route(s, space, ns, verb, rest, details):
    routes = space["routes"]
    if verb == "show":
        return [dict(r) for r in routes]
    dst = rest[0]
    if verb == "replace":
        r = {"dst": dst, "gateway": rest[rest.index("via") + 1], "dev": "eth0",
             "protocol": rest[rest.index("proto") + 1] if "proto" in rest else "boot"}
        space["routes"] = [x for x in routes if x["dst"] != dst] + [r]
        return None
    if verb == "del":
        if not any(x["dst"] == dst for x in routes):
            fail("RTNETLINK answers: No such process")
        space["routes"] = [x for x in routes if x["dst"] != dst]
        return None
    fail(f"fake ip: unsupported route {verb}")


def netns(s, space, ns, verb, rest, details):
    if verb in ("list", "show"):
        return [{"name": n} for n in s["netns"]]
    if verb == "add":
        if rest[0] in s["netns"]:
            fail(f'Cannot create namespace file "/run/netns/{rest[0]}": File exists', 1)
        s["netns"].append(rest[0])
        s["ns"][rest[0]] = {"links": {"lo": {"kind": None, "up": False, "master": None, "index": 1, "peer": None}},
                            "routes": []}
        return None
    if verb == "del":
        if rest[0] not in s["netns"]:
            fail(f'Cannot remove namespace file "/run/netns/{rest[0]}": No such file or directory', 1)
        s["netns"].remove(rest[0])
        gone = {v["peer"] for v in s["ns"].pop(rest[0])["links"].values() if v.get("peer")}
        s["ns"][""]["links"] = {k: v for k, v in s["ns"][""]["links"].items() if v["index"] not in gone}
        return None
    fail(f"fake ip: unsupported netns {verb}")


def neigh(s, space, ns, verb, rest, details):
    if verb == "flush":
        return None
    fail(f"fake ip: unsupported neigh {verb}")


def batch(argv: list[str]) -> None:
    """``ip [-n NS] -batch -``: each line of stdin is one command (with the options before -batch); the first that
    fails ends the batch, as ip's does ("Command failed -:LINE")."""
    at = argv.index("-batch")
    if argv[at + 1:] != ["-"]:
        fail("fake ip: -batch reads only stdin (-batch -)")
    for n, line in enumerate(sys.stdin.read().splitlines(), 1):
        if not line.strip():
            continue
        try:
            main(argv[:at] + line.split())
        except SystemExit as exc:
            if exc.code:
                fail(f"Command failed -:{n}", 1)


if __name__ == "__main__":
    if "-batch" in sys.argv[1:]:
        batch(sys.argv[1:])
    else:
        main(sys.argv[1:])
