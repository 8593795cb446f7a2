"""The lock channel's reader (``ssh._Lines``): the answer after the nonce, and everything before the facts
script's ``NONCE RAN <rc>`` line, however the output is cut into pieces on its way."""

import threading

from hypothesis import given, settings, strategies as st

from provisioner.transport.ssh import _Lines


class Channel:
    """As much of a paramiko channel as _Lines uses: the pieces arrive one per recv; then the channel ends."""

    def __init__(self, pieces: list[bytes]):
        self.pieces = list(pieces)
        self.closed = False
        self.eof_received = True  # _wait then waits on status_event, which is set: no sleeping in a test
        self.status_event = threading.Event()
        self.status_event.set()

    def recv_ready(self) -> bool:
        return bool(self.pieces)

    def recv(self, n: int) -> bytes:
        return self.pieces.pop(0)

    def exit_status_ready(self) -> bool:
        return not self.pieces


def cut(data: bytes, at: list[int]) -> list[bytes]:
    points = sorted({min(max(0, a), len(data)) for a in at} | {0, len(data)})
    return [data[a:b] for a, b in zip(points, points[1:]) if b > a]


LINE = st.text(st.characters(codec="utf-8", exclude_characters="\n"), max_size=40)


@settings(max_examples=300, deadline=None, database=None)
@given(lines=st.lists(LINE, max_size=30), rc=st.integers(0, 255), after=st.lists(LINE, max_size=3),
       points=st.lists(st.integers(0, 4000), max_size=40))
def test_until_gives_what_came_before_the_marker_however_it_is_cut(lines, rc, after, points):
    marker = "abc123 RAN "
    lines = [line for line in lines if not line.startswith(marker)]
    body = "".join(line + "\n" for line in lines)
    data = (body + f"{marker}{rc}\n" + "".join(a + "\n" for a in after)).encode()
    reader = _Lines(Channel(cut(data, points)))  # type: ignore[arg-type]
    assert reader.until(marker, 5) == (body, rc)
    rest = bytes(reader.buf)
    while reader._more(None):
        rest = bytes(reader.buf)
    assert rest == "".join(a + "\n" for a in after).encode()


def test_until_when_the_channel_ends_before_the_marker_line_is_whole():
    reader = _Lines(Channel([b"facts\nabc1", b"23 RAN 0"]))  # type: ignore[arg-type]
    assert reader.until("abc123 RAN ", 5) == ("facts\nabc123 RAN 0", None)


def test_until_a_marker_that_is_not_at_a_line_start_is_not_the_marker():
    reader = _Lines(Channel([b"x abc123 RAN 3\n", b"abc123 RAN 4\n"]))  # type: ignore[arg-type]
    assert reader.until("abc123 RAN ", 5) == ("x abc123 RAN 3\n", 4)


def test_until_an_rc_that_is_not_a_number_is_255():
    reader = _Lines(Channel([b"out\nabc123 RAN x\n"]))  # type: ignore[arg-type]
    assert reader.until("abc123 RAN ", 5) == ("out\n", 255)


def test_marked_skips_other_lines_then_until_reads_on():
    reader = _Lines(Channel([b"motd line\nabc LOC", b"KED\nfacts\nabc RAN 0\n"]))  # type: ignore[arg-type]
    assert reader.marked("abc", 5) == "LOCKED"
    assert reader.until("abc RAN ", 5) == ("facts\n", 0)


def test_paramikos_mac_check_is_the_constant_time_one_in_c_and_still_says_no():
    """The transport gives paramiko hmac.compare_digest for its per-packet MAC check (its own loop in Python was
    more than half of its CPU); the answers are the same: equal, different, different lengths."""
    import hmac

    import paramiko.packet

    check = paramiko.packet.util.constant_time_bytes_eq
    assert check is hmac.compare_digest
    mac = bytes(range(32))
    assert check(mac, bytes(mac)) and not check(mac, mac[:-1] + b"\x00") and not check(mac, mac[:16])
