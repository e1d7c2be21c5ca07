"""The ratings gRPC client books uses: HTTP/2 prior knowledge to the sidecar, :authority names the service."""

from __future__ import annotations

import grpc

from meshctl.demo.proto import ratings_pb2, ratings_pb2_grpc
from meshctl.demo.web import HTTPFailure

TIMEOUT_S = 5.0


def rating_json(rating: ratings_pb2.Rating) -> dict[str, object]:
    return {"book_id": rating.book_id, "average": round(rating.average, 2), "votes": rating.votes}


class RatingsClient:
    def __init__(self, outbound: str, authority: str) -> None:
        self._channel = grpc.insecure_channel(
            outbound,
            options=[
                ("grpc.default_authority", authority),
                ("grpc.enable_http_proxy", 0),  # the sidecar is the proxy; ignore http_proxy variables
            ],
        )
        self._stub = ratings_pb2_grpc.RatingsStub(self._channel)
        self.authority = authority

    def get(self, book_id: int) -> dict[str, object] | None:
        """The rating, or None when ratings cannot answer: a book page still renders without stars."""
        try:
            reply = self._stub.GetRating(ratings_pb2.GetRatingRequest(book_id=book_id), timeout=TIMEOUT_S)
        except grpc.RpcError:
            return None
        return rating_json(reply)

    def rate(self, book_id: int, stars: int) -> dict[str, object]:
        try:
            reply = self._stub.RateBook(ratings_pb2.RateBookRequest(book_id=book_id, stars=stars), timeout=TIMEOUT_S)
        except grpc.RpcError as exc:
            code = exc.code() if isinstance(exc, grpc.Call) else grpc.StatusCode.UNKNOWN
            status = {grpc.StatusCode.NOT_FOUND: 404, grpc.StatusCode.INVALID_ARGUMENT: 400}.get(code, 502)
            detail = exc.details() if isinstance(exc, grpc.Call) else str(exc)
            raise HTTPFailure(status, f"RateBook on {self.authority}: {code.name}: {detail}") from None
        return rating_json(reply)

    def close(self) -> None:
        self._channel.close()
