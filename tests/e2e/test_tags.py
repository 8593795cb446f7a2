"""Tags on a lab: one concern applied alone, one concern reset alone, and a full reset still finds the rest."""

from __future__ import annotations

from .test_operate import state


def test_apply_and_reset_one_concern_at_a_time(make_lab):
    lab = make_lab(2, pods=("web",))
    before = state(lab, "node1")
    rc, doc = lab.json("apply", "--tags", "network")
    assert rc == 0, doc["recap"]
    assert "v-net-0" in lab.node_sh("node1", "ip -br link")
    assert lab.node_sh("node1", "ls /etc/cni/net.d 2>/dev/null | wc -l").strip() == "0"  # cni's tasks did not run
    assert lab.json("apply")[0] == 0
    assert lab.node_sh("node1", "ls /etc/cni/net.d | wc -l").strip() != "0"
    rc, doc = lab.json("reset", "--tags", "cni")
    assert rc == 0, doc["recap"]
    assert lab.node_sh("node1", "ls /etc/cni/net.d 2>/dev/null | wc -l").strip() == "0"
    assert "v-net-0" in lab.node_sh("node1", "ip -br link")  # the network is kept, and so are the records of it
    assert lab.node_sh("node1", "test -s /var/lib/provisioner/created && echo kept").strip() == "kept"
    rc, doc = lab.json("plan", "--skip-tags", "cni")
    assert rc == 0 and not any(r["changed"] for r in doc["recap"].values()), doc["recap"]
    assert lab.json("reset")[0] == 0
    assert state(lab, "node1") == before
