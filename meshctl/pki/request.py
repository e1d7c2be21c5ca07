"""A fresh key and its CSR, made in a short-lived process: `python -m meshctl.pki.request IDENTITY`.

The proxy asks for a certificate at start and at every renewal. Making the key and the CSR needs
`cryptography` (15 MiB of RSS that would stay in the proxy for its whole life), so a child process
makes them and hands them back on stdout as JSON: {"key_pem": …, "csr_der": base64}. The key crosses
one pipe between two processes of the same workload and never touches disk.
"""

from __future__ import annotations

import base64
import json
import sys

from meshctl.pki.keys import make_csr, new_key, private_key_pem


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m meshctl.pki.request IDENTITY", file=sys.stderr)
        return 2
    key = new_key()
    json.dump(
        {"key_pem": private_key_pem(key).decode("ascii"), "csr_der": base64.b64encode(make_csr(args[0], key)).decode()},
        sys.stdout,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
