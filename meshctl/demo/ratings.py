"""ratings: the demo's gRPC service. `GetRating` fails with UNAVAILABLE for --failure-rate of the calls."""

from __future__ import annotations

import hashlib
import random
import signal
import threading
from concurrent import futures
from types import FrameType

import grpc

from meshctl.demo.catalogue import BOOKS
from meshctl.demo.proto import ratings_pb2, ratings_pb2_grpc
from meshctl.demo.settings import ServiceSettings
from meshctl.demo.web import log

MAX_BOOK_ID = 1_000_000


def _first_votes(book_id: int) -> tuple[int, int]:
    """(votes, total stars) a catalogue book starts with: stable across restarts, different per book."""
    digest = hashlib.sha256(f"book-{book_id}".encode()).digest()
    votes = 5 + digest[0] % 60
    return votes, votes * 3 + digest[1] % (votes * 2 + 1)


class Ledger:
    def __init__(self) -> None:
        self._votes: dict[int, tuple[int, int]] = {b.id: _first_votes(b.id) for b in BOOKS}
        self._lock = threading.Lock()

    def rating(self, book_id: int) -> ratings_pb2.Rating:
        with self._lock:
            votes, total = self._votes.get(book_id, (0, 0))
        return ratings_pb2.Rating(book_id=book_id, average=total / votes if votes else 0.0, votes=votes)

    def vote(self, book_id: int, stars: int) -> ratings_pb2.Rating:
        with self._lock:
            votes, total = self._votes.get(book_id, (0, 0))
            self._votes[book_id] = (votes + 1, total + stars)
        return self.rating(book_id)


class RatingsService(ratings_pb2_grpc.RatingsServicer):
    def __init__(self, settings: ServiceSettings, rng: random.Random | None = None) -> None:
        self._settings = settings
        self._ledger = Ledger()
        self._chance = rng or random.Random()

    def GetRating(  # noqa: N802 - the RPC's name
        self, request: ratings_pb2.GetRatingRequest, context: grpc.ServicerContext
    ) -> ratings_pb2.Rating:
        if not 0 < request.book_id <= MAX_BOOK_ID:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no book {request.book_id}")
        if self._chance.random() < self._settings.failure_rate:
            context.abort(
                grpc.StatusCode.UNAVAILABLE, f"simulated failure (failure rate {self._settings.failure_rate})"
            )
        return self._ledger.rating(request.book_id)

    def RateBook(  # noqa: N802 - the RPC's name
        self, request: ratings_pb2.RateBookRequest, context: grpc.ServicerContext
    ) -> ratings_pb2.Rating:
        if not 0 < request.book_id <= MAX_BOOK_ID:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no book {request.book_id}")
        if not 1 <= request.stars <= 5:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "stars must be 1 to 5")
        return self._ledger.vote(request.book_id, request.stars)


def main(settings: ServiceSettings) -> int:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="ratings"))
    ratings_pb2_grpc.add_RatingsServicer_to_server(RatingsService(settings), server)
    try:
        bound = server.add_insecure_port(settings.listen)
    except RuntimeError:
        bound = 0
    if bound == 0:
        log(settings.pod, f"cannot listen on {settings.listen}")
        return 1
    stopping = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.start()
    log(settings.pod, f"gRPC listening on {settings.listen}")
    while not stopping.wait(0.5):
        pass
    server.stop(grace=2.0).wait(5.0)
    log(settings.pod, "stopped")
    return 0
