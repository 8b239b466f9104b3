"""Time `hotsite up` of the PetClinic site with 2, 8 and 20 web nodes on test hosts.

Each size gets fresh test hosts (network namespaces running sshd, private /opt): one
database node, N web nodes, one load balancer. The time is the wall time of the whole
`hotsite up` command (node allocation, MariaDB install and start, app upload, install,
start and health check on every web node, HAProxy). The goal: 20 web nodes take at most
twice as long as 2, i.e. nodes are worked on in parallel, not one after another.

Run as root: `.venv/bin/python bench/blueprint_up.py [--sizes 2,8,20]`.
"""

from __future__ import annotations

import argparse
import os
import runpy
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from hotsite.testing.sshhosts import SSHHostFactory

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "petclinic"
HOTSITE = [sys.executable, "-m", "hotsite"]


def run(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*HOTSITE, "--config", str(config), *args],
        capture_output=True,
        text=True,
        cwd=config.parent,
        timeout=900,
    )


def one_size(web: int) -> tuple[float, float]:
    """Seconds for `up` and for `down` with ``web`` web nodes."""
    with tempfile.TemporaryDirectory(prefix="hotsite-bench-") as tmp:
        directory = Path(tmp)
        factory = SSHHostFactory(directory / "hosts")
        try:
            roles = ["db", *["web"] * web, "lb"]
            hosts = factory.create(len(roles), private_dirs=["/opt"])
            config = directory / "hotsite.yaml"
            config.write_text(
                yaml.safe_dump(
                    {
                        "sites": {
                            "primary": {
                                "blueprint": str(EXAMPLE / "blueprint.yaml"),
                                "driver": "rack",
                                "inputs": {"web_count": web},
                            }
                        },
                        "nodes": {
                            "ssh": {
                                "key": str(factory.client_key_path),
                                "accept_new_host_keys": True,
                            },
                            "providers": {
                                "rack": {
                                    "driver": "byon",
                                    "hosts": [
                                        {
                                            "name": h.name,
                                            "address": h.address,
                                            "port": h.port,
                                            "tags": {"role": r},
                                        }
                                        for h, r in zip(hosts, roles, strict=True)
                                    ],
                                }
                            },
                        },
                    }
                )
            )
            started = time.monotonic()
            up = run(config, "up", "primary", "-q")
            up_seconds = time.monotonic() - started
            if up.returncode != 0:
                raise SystemExit(f"up failed with {web} web nodes:\n{up.stdout}\n{up.stderr}")
            started = time.monotonic()
            down = run(config, "down", "primary", "-q")
            down_seconds = time.monotonic() - started
            if down.returncode != 0:
                raise SystemExit(f"down failed:\n{down.stdout}\n{down.stderr}")
            return up_seconds, down_seconds
        finally:
            factory.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2,8,20", help="web node counts, comma-separated")
    parser.add_argument("--repeat", type=int, default=2, help="runs per size; the best counts")
    parser.add_argument(
        "--settle",
        type=float,
        default=5.0,
        help="seconds to wait between runs: deleting "
        "network namespaces keeps the kernel busy for a while after the hosts are gone",
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    os.environ.setdefault("PETCLINIC_DB_PASSWORD", "bench-Secret-1")
    runpy.run_path(str(EXAMPLE / "make-wheelhouse"))["build"]()
    print(
        f"hotsite up of the PetClinic site (1 db + N web + 1 lb node), {os.cpu_count()} CPUs,"
        f" load average {os.getloadavg()[0]:.1f}; best of {args.repeat}"
    )
    times: dict[int, float] = {}
    for web in sizes:
        runs = []
        for _ in range(args.repeat):
            runs.append(one_size(web))
            time.sleep(args.settle)
        ups = [u for u, _ in runs]
        times[web] = min(ups)
        print(
            f"  {web:>3} web nodes ({web + 2:>2} hosts): up {min(ups):6.2f} s"
            f" (runs: {', '.join(f'{u:.2f}' for u in ups)})"
            f"   down {min(d for _, d in runs):6.2f} s",
            flush=True,
        )
    if len(sizes) > 1:
        low, high = min(sizes), max(sizes)
        ratio = times[high] / times[low]
        verdict = "ok" if ratio <= 2 else "above the goal of 2"
        print(f"  ratio {high}/{low}: {ratio:.2f} ({verdict})")


if __name__ == "__main__":
    main()
