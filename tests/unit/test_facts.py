"""Facts: markers split one exec's output back per fact; parsers turn real `ip -json` into values."""

import shlex
import subprocess
from dataclasses import dataclass

from provisioner.facts.values import Link, Route
from provisioner import facts
from provisioner.facts import Fact, files, net
from provisioner.facts.files import Binary, Exists, File, Listing, Sysctl
from provisioner.facts.net import Addrs, Links, Netns

LINKS = ('[{"ifindex":3,"ifname":"v-net-0","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":1500,'
         '"address":"06:ca:13:cf:dc:49","linkinfo":{"info_kind":"bridge"}},'
         '{"ifindex":4,"ifname":"veth-web","flags":["BROADCAST","MULTICAST"],"mtu":1500,"master":"v-net-0",'
         '"address":"06:ca:13:cf:dc:4a","linkinfo":{"info_kind":"veth","info_slave_kind":"bridge"}},'
         '{"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP"],"mtu":65536}]')
ADDRS = ('[{"ifname":"v-net-0","addr_info":[{"family":"inet","local":"10.244.1.1","prefixlen":24},'
         '{"family":"inet6","local":"fe80::1","prefixlen":64}]},{"ifname":"lo","addr_info":[]}]')
ROUTES = ('[{"dst":"10.213.0.0/24","dev":"eth0","protocol":"kernel","scope":"link"},'
          '{"dst":"10.244.2.0/24","gateway":"10.213.0.12","dev":"eth0","protocol":"147"},'
          '{"dst":"default","gateway":"10.244.1.1","dev":"eth0"}]')


def test_parse_links():
    got = net.parse_links(LINKS, 0)
    assert got["v-net-0"] == Link(kind="bridge", master=None, up=True, mtu=1500, mac="06:ca:13:cf:dc:49", index=3,
                                  peer=None)
    assert got["veth-web"].master == "v-net-0" and got["veth-web"].up is False
    assert got["lo"].kind is None


def test_parse_addrs_keeps_ipv4_only():
    assert net.parse_addrs(ADDRS, 0) == {"v-net-0": ["10.244.1.1/24"], "lo": []}


def test_parse_routes():
    got = net.parse_routes(ROUTES, 0)
    assert got[1] == Route(dst="10.244.2.0/24", via="10.213.0.12", dev="eth0", protocol="147")
    assert got[2].dst == "default" and got[2].protocol == "boot"


def test_absent_is_none_never_an_exception():
    assert net.parse_links("", 1) is None
    assert net.parse_addrs("garbage{", 0) is None
    assert net.parse_netns("", 0) == []
    assert files.parse_file("", 1) is None
    assert files.parse_binary("", 1) is None
    assert files.parse_text("x", 2) is None
    assert Listing("/nope").process("", 1) == [] and Exists("/nope").process("", 1) is False


@dataclass(frozen=True)
class Shell(Fact):
    """A fact whose command is given whole (for these tests only)."""

    text: str

    def command(self) -> str:
        return self.text

    def process(self, stdout, rc):
        return files.parse_text(stdout, rc)


def test_split_roundtrip_through_a_real_shell():
    a, b, c = Shell("printf 'one\\ntwo'"), Shell("echo hi; exit 3"), Shell("printf '@@PROVISIONER-END 0\\n'; echo x")
    fs = [a, b, c, Shell("printf 'one\\ntwo'")]  # the same fact twice runs once
    out = subprocess.run(["sh", "-s"], input=facts.script(fs, "0bce"), capture_output=True, text=True).stdout
    raw = facts.split(out, fs, "0bce")
    assert raw == {a: ("one\ntwo", 0), b: ("hi\n", 3), c: ("@@PROVISIONER-END 0\nx\n", 0)}  # c: a forged marker
    assert out.count("one") == 1
    assert facts.parse_all(fs, raw) == {a: "one\ntwo", b: None, c: "@@PROVISIONER-END 0\nx"}


def test_file_fact_through_a_real_shell(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(b"line1\nline2\n\x00binary")
    p.chmod(0o640)
    fact = File(str(p))
    out = subprocess.run(["sh", "-s"], input=facts.script([fact]), capture_output=True, text=True).stdout
    value = facts.parse_all([fact], facts.split(out, [fact]))[File(str(p))]  # an equal instance finds the value
    assert value.content == b"line1\nline2\n\x00binary" and value.mode == "0640"
    missing = File(str(tmp_path / "nope"))
    out = subprocess.run(["sh", "-s"], input=facts.script([missing]), capture_output=True, text=True).stdout
    assert facts.parse_all([missing], facts.split(out, [missing]))[missing] is None


def test_facts_are_values_named_by_class_and_arguments():
    assert Addrs("web") == Addrs("web") and Addrs("web") != Addrs() and Addrs("web") != Links("web")
    assert File("/x") != Exists("/x") and len({File("/x"), File("/x"), Exists("/x")}) == 2
    assert str(Addrs("web")) == "Addrs('web')" and str(Netns()) == "Netns()"


def test_commands_quote_their_arguments():
    assert Addrs("web").command() == "ip -n web -json -d addr show"
    assert Links().command() == Addrs().command() == "ip -json -d addr show"  # one run answers both
    assert Sysctl("net.ipv4.ip_forward").command() == "cat /proc/sys/net/ipv4/ip_forward"
    assert File("/etc/a b").command().count("'/etc/a b'") == 3
    assert Listing("/etc/$(x)").command() == "test -d '/etc/$(x)' && ls -1A '/etc/$(x)'"


def test_markers_carry_positions_never_arguments(tmp_path):
    """An argument holding shell syntax (arguments embed inventory paths) never reaches the script's marker lines."""
    hostile = "/tmp/x'; touch " + str(tmp_path / "pwned") + "; echo '"
    fact = File(hostile)
    script = facts.script([fact], "ab12")
    assert hostile not in script.replace(shlex.quote(hostile), "")
    out = subprocess.run(["sh", "-s"], input=script, capture_output=True, text=True).stdout
    assert facts.parse_all([fact], facts.split(out, [fact], "ab12"))[fact] is None
    assert not (tmp_path / "pwned").exists()


def test_many_files_are_read_by_one_tar_with_the_same_answers(tmp_path):
    """A batch (one tar, one base64; one stat, one sha256sum) answers exactly as each fact's own command would."""
    (tmp_path / "a").write_bytes(b"alpha\n")
    (tmp_path / "b b").write_bytes(b"\x00\xffbinary")
    (tmp_path / "b b").chmod(0o600)
    (tmp_path / "dir").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "a")
    names = ["a", "b b", "dir", "link", "missing"]
    for cls in (File, Binary):
        fs = [cls(str(tmp_path / n)) for n in names]
        assert cls.batch_command(fs) is not None
        batched = facts.script(fs, "ab")
        assert batched.count("@@PROVISIONER-FACT") == 1  # one job for the whole class
        got = facts.parse_all(fs, facts.split(run_sh(batched), fs, "ab"))
        alone = {f: facts.parse_all([f], facts.split(run_sh(facts.script([f], "ab")), [f], "ab"))[f] for f in fs}
        assert got == alone, cls
        assert got[fs[2]] is None and got[fs[4]] is None and got[fs[3]] is not None  # a dir and a missing file: absent
    assert facts.parse_all([File(str(tmp_path / "b b"))], {})[File(str(tmp_path / "b b"))] is None


def test_links_and_addrs_share_one_ip_run():
    fs = [Links(), Addrs(), Links("web"), Addrs("web")]
    script = facts.script(fs, "ab")
    assert script.count("ip -json -d addr show") == 1 and script.count("ip -n web -json -d addr show") == 1
    out = ("@@PROVISIONER-FACTab 0\n" + '[{"ifindex":3,"ifname":"v-net-0","flags":["UP"],"linkinfo":{"info_kind":"bridge"},'
           '"addr_info":[{"family":"inet","local":"10.244.1.1","prefixlen":24}]}]' + "\n@@PROVISIONER-ENDab 0\n")
    got = facts.parse_all(fs, facts.split(out, fs, "ab"))
    assert got[Links()]["v-net-0"].kind == "bridge" and got[Addrs()] == {"v-net-0": ["10.244.1.1/24"]}
    assert got[Links("web")] is None  # not in the output: absent, never an exception


def run_sh(script: str) -> str:
    return subprocess.run(["sh", "-s"], input=script, capture_output=True, text=True).stdout
