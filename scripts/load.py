"""Background load for scripts/soak.sh: about 0.6 of a core busy (60 ms on, 40 ms off), 4 GiB held and touched
every 10 s, and 64 MiB written and fsynced every 5 s (to a file under /tmp/provisioner-soak)."""

import os
import threading
import time

MEM = bytearray(4 << 30)
OUT = "/tmp/provisioner-soak/load.bin"


def touch() -> None:
    while True:
        for i in range(0, len(MEM), 4096 * 64):
            MEM[i] = (MEM[i] + 1) & 255
        time.sleep(10)


def disk() -> None:
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    while True:
        with open(OUT, "wb") as f:
            f.write(os.urandom(64 << 20))
            f.flush()
            os.fsync(f.fileno())
        time.sleep(5)


if __name__ == "__main__":
    threading.Thread(target=touch, daemon=True).start()
    threading.Thread(target=disk, daemon=True).start()
    while True:
        end = time.monotonic() + 0.06
        while time.monotonic() < end:
            pass
        time.sleep(0.04)
