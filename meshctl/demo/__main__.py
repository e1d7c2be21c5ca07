"""`python -m meshctl.demo SERVICE --listen HOST:PORT --outbound HOST:PORT` or `... traffic --target URL`."""

from __future__ import annotations

import argparse
import sys

from meshctl.demo.settings import PORTS, add_service_flags, settings_from

ROLES = {
    "webapp": "the front end (HTML), calls books and authors",
    "books": "books over HTTP; POST /books fails at --failure-rate; calls authors and ratings",
    "authors": "authors over HTTP; GET /authors/{id} is slow (--latency-ms) and fails at --failure-rate",
    "ratings": "star ratings over gRPC; GetRating fails at --failure-rate",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m meshctl.demo", description="The booksapp demo services.")
    commands = parser.add_subparsers(dest="service", required=True, metavar="SERVICE")
    for service, role in ROLES.items():
        add_service_flags(commands.add_parser(service, help=f"{role} (port {PORTS[service]})"), service)
    from meshctl.demo import traffic

    traffic.add_flags(commands.add_parser("traffic", help="send a bounded mix of requests to the ingress"))
    args = parser.parse_args(argv)
    if args.service == "traffic":
        return traffic.main(args)
    settings = settings_from(args, args.service)
    # Each service imports only what it needs: ratings and books load grpc, the others do not.
    if args.service == "webapp":
        from meshctl.demo import webapp as module
    elif args.service == "books":
        from meshctl.demo import books as module  # type: ignore[no-redef]
    elif args.service == "authors":
        from meshctl.demo import authors as module  # type: ignore[no-redef]
    else:
        from meshctl.demo import ratings as module  # type: ignore[no-redef]
    return module.main(settings)


if __name__ == "__main__":
    sys.exit(main())
