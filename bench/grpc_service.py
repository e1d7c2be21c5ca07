"""The gRPC server the bench calls: the demo's Ratings service on grpc.aio.

    python -m bench.grpc_service --listen 127.0.0.1:7003

The same contract (booksapp.ratings.v1.Ratings), messages and ledger as `meshctl.demo.ratings`, without
its simulated failures and its thread pool: one event loop answers every call, so the server's cost per
call is small and the same on every arm. Runs until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

import grpc

from meshctl.demo.proto import ratings_pb2, ratings_pb2_grpc
from meshctl.demo.ratings import MAX_BOOK_ID, Ledger

GET_RATING = "/booksapp.ratings.v1.Ratings/GetRating"

Context = grpc.aio.ServicerContext[ratings_pb2.GetRatingRequest, ratings_pb2.Rating]
VoteContext = grpc.aio.ServicerContext[ratings_pb2.RateBookRequest, ratings_pb2.Rating]


class BenchRatings(ratings_pb2_grpc.RatingsServicer):
    def __init__(self) -> None:
        self._ledger = Ledger()

    async def GetRating(  # noqa: N802 - the RPC's name
        self, request: ratings_pb2.GetRatingRequest, context: Context
    ) -> ratings_pb2.Rating:
        if not 0 < request.book_id <= MAX_BOOK_ID:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no book {request.book_id}")
        return self._ledger.rating(request.book_id)

    async def RateBook(  # noqa: N802 - the RPC's name
        self, request: ratings_pb2.RateBookRequest, context: VoteContext
    ) -> ratings_pb2.Rating:
        if not 0 < request.book_id <= MAX_BOOK_ID:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no book {request.book_id}")
        if not 1 <= request.stars <= 5:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "stars must be 1 to 5")
        return self._ledger.vote(request.book_id, request.stars)


async def start_server(
    listen: str, servicer: ratings_pb2_grpc.RatingsServicer | None = None
) -> tuple[grpc.aio.Server, int]:
    """A started server on `listen` ("host:port", port 0 for any); returns it and the bound port."""
    server = grpc.aio.server()
    ratings_pb2_grpc.add_RatingsServicer_to_server(servicer or BenchRatings(), server)
    port = server.add_insecure_port(listen)
    if port == 0:
        raise OSError(f"cannot listen on {listen}")
    await server.start()
    return server, port


async def serve(listen: str) -> int:
    try:
        server, port = await start_server(listen)
    except (OSError, RuntimeError) as exc:
        print(f"grpc_service: {exc} (is the port in use?)", file=sys.stderr)
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"grpc_service: listening on port {port}", file=sys.stderr, flush=True)
    await stop.wait()
    await server.stop(grace=1.0)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.grpc_service", description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", default="127.0.0.1:0", help="host:port to serve on (default: any port)")
    return asyncio.run(serve(parser.parse_args(argv).listen))


if __name__ == "__main__":
    sys.exit(main())
