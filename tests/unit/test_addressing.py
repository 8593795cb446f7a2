import ipaddress
import shutil
import subprocess

import pytest

from provisioner import addressing as ad

N = ipaddress.IPv4Network


def test_dns_and_api_ip_are_10th_and_1st_of_service_range():
    assert str(ad.dns_ip_for(N("10.96.0.0/12"))) == "10.96.0.10"
    assert str(ad.api_ip_for(N("10.96.0.0/12"))) == "10.96.0.1"
    assert str(ad.dns_ip_for(N("172.20.0.0/16"))) == "172.20.0.10"


def test_overlaps_in_both_directions():
    big, small = N("10.0.0.0/8"), N("10.244.0.0/16")
    assert ad.overlaps(big, small) and ad.overlaps(small, big)
    assert not ad.overlaps(N("10.244.0.0/16"), N("10.96.0.0/12"))


def test_allocation_starts_at_1_and_skips_explicit_subnets():
    pod = N("10.244.0.0/16")
    got = ad.allocate_subnets(pod, 24, [None, N("10.244.2.0/24"), None])
    assert [str(s) for s in got] == ["10.244.1.0/24", "10.244.2.0/24", "10.244.3.0/24"]


def test_appending_a_node_never_renumbers_existing_ones():
    pod = N("10.244.0.0/16")
    before = ad.allocate_subnets(pod, 24, [None, N("10.244.7.0/24"), None])
    after = ad.allocate_subnets(pod, 24, [None, N("10.244.7.0/24"), None, None])
    assert after[:3] == before
    assert after[3] not in before


def test_allocation_runs_out():
    with pytest.raises(ValueError, match="no free /26"):
        ad.allocate_subnets(N("10.244.0.0/25"), 26, [None, None])


def test_gateway_and_usable_hosts():
    s = N("10.244.1.0/24")
    assert str(ad.gateway_for(s)) == "10.244.1.1"
    assert ad.usable_host(s, ipaddress.IPv4Address("10.244.1.2"))
    for bad in ("10.244.1.0", "10.244.1.1", "10.244.1.255", "10.244.2.5"):
        assert not ad.usable_host(s, ipaddress.IPv4Address(bad))


def _debian_ipcalc(spec: str) -> dict:
    out = subprocess.run(["ipcalc", "-n", "-b", spec], capture_output=True, text=True, check=True).stdout
    fields = {}
    for line in out.splitlines():
        if ":" in line:
            key, _, rest = line.partition(":")
            fields[key.strip()] = rest.strip()
    return fields


@pytest.mark.skipif(shutil.which("ipcalc") is None, reason="Debian's ipcalc is not installed (scripts/bootstrap.sh installs it)")
@pytest.mark.parametrize("prefix", range(8, 33))
@pytest.mark.parametrize("address", ["10.49.70.3", "192.168.56.200", "172.16.255.1"])
def test_ipcalc_matches_debian(address, prefix):
    spec = f"{address}/{prefix}"
    theirs, ours = _debian_ipcalc(spec), ad.ipcalc(spec)
    assert ours["Address"] == theirs["Address"]
    assert ours["Netmask"] == theirs["Netmask"]
    assert ours["Wildcard"] == theirs["Wildcard"]
    assert str(ours["Hosts/Net"]) == theirs["Hosts/Net"].split()[0]
    if prefix == 32:
        assert ours["HostMin"] == theirs["Hostroute"]
        return
    assert ours["Network"] == theirs["Network"]
    assert ours["HostMin"] == theirs["HostMin"]
    assert ours["HostMax"] == theirs["HostMax"]
    assert ours["Broadcast"] == theirs.get("Broadcast")


def test_ipcalc_known_values():
    f = ad.ipcalc("10.49.70.3/24")
    assert f["Network"] == "10.49.70.0/24" and f["Broadcast"] == "10.49.70.255" and f["Hosts/Net"] == 254
    assert "Netmask:   255.255.255.0 = 24" in ad.format_ipcalc(f)
