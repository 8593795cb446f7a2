"""cni.mtu is the MTU of the pod bridge and of both ends of every hand-made pod's veth, and a change is applied."""

from __future__ import annotations

import yaml


def mtus(lab, node="node1") -> list[str]:
    return lab.node_sh(node, "cat /sys/class/net/v-net-0/mtu /sys/class/net/veth-web/mtu; "
                             "ip netns exec web cat /sys/class/net/eth0/mtu").split()


def test_cni_mtu_reaches_the_bridge_and_the_pods(make_lab):
    lab = make_lab(2, pods=("web",))
    data = lab.data()
    data["cni"] = {**data.get("cni", {}), "mtu": 1400}
    lab.inventory.write_text(yaml.safe_dump(data, sort_keys=False))
    assert lab.json("apply")[0] == 0
    assert mtus(lab) == ["1400", "1400", "1400"]
    data["cni"]["mtu"] = 1450
    lab.inventory.write_text(yaml.safe_dump(data, sort_keys=False))
    rc, doc = lab.json("plan")
    assert rc == 0 and all(r["changed"] for r in doc["recap"].values())
    assert lab.json("apply")[0] == 0
    assert mtus(lab) == ["1450", "1450", "1450"]
    assert "mtu 1450" in lab.node_sh("node1", "cat /etc/provisioner/pod-network.sh")  # and so after a reboot
    rc, doc = lab.json("plan")
    assert rc == 0 and not any(r["changed"] for r in doc["recap"].values())
    assert lab.json("reset")[0] == 0
