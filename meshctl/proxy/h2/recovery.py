"""How an HTTP/2 exchange (h2/exchange.py) recovers when its upstream does not answer: another attempt
with the request body kept for it, or the failure answered to the client.

These are `Exchange`'s methods, kept apart from the forward path they interrupt: the class takes them as
attributes (`Exchange.fail = recovery.fail` and so on), so a call costs what a method defined in its body
costs. An attempt is repeated only while the whole request is at hand (`REPLAY_LIMIT`) and at most
`MAX_ATTEMPTS` times: when the request was never processed (refused stream, lost connection, the peer
proxy never reached its app), or on a retryable route while its retry budget allows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ngh2 import ErrorCode

from meshctl.proxy.errors import DeadlineExceeded, Failure, ResponseTimeout, UpstreamReset
from meshctl.proxy.h2 import grpc
from meshctl.proxy.h2.headers import Block
from meshctl.proxy.rescue import NEVER_SENT, NOT_DELIVERED, PROXY_ERROR_HEADER

if TYPE_CHECKING:
    from meshctl.proxy.h2.exchange import Exchange

REPLAY_LIMIT = 64 * 1024  # a request is replayed on a refused stream only if its body fits (as Linkerd)
MAX_ATTEMPTS = 3


def keep_for_replay(ex: Exchange, chunk: bytes) -> None:
    """Hold a chunk sent upstream for another attempt, while the whole body fits REPLAY_LIMIT."""
    replay = ex.replay
    if replay is not None:
        if not replay:
            ex.replay = [chunk] if len(chunk) <= REPLAY_LIMIT else None
        elif sum(map(len, replay)) + len(chunk) > REPLAY_LIMIT:
            ex.replay = None
        else:
            replay.append(chunk)


def upstream_reset(ex: Exchange, error_code: int, reason: str) -> None:
    """The upstream stream is gone (peer reset, GOAWAY refusal, malformed response)."""
    ex._detach_up(reset=False)
    if ex.done:
        return
    if error_code == ErrorCode.REFUSED_STREAM and retry_unsent(ex):
        return
    if ex.plan.budget is not None and retry_reset(ex):
        return
    fail(ex, UpstreamReset(reason))

def upstream_lost(ex: Exchange, reason: str, resend: bool = False) -> None:
    """The upstream connection is gone; `resend`: the request cannot have been processed, send it again."""
    ex._detach_up(reset=False)
    if ex.done or (resend and ex.attempts < MAX_ATTEMPTS and not ex.answered):
        if not ex.done:
            again(ex)
        return
    if ex.plan.budget is not None and retry_reset(ex):
        return
    fail(ex, UpstreamReset(reason))

def retry_route(ex: Exchange, status: int, headers: Block, end: bool) -> bool:
    """A failed response on a retryable route: another attempt, while the budget allows. gRPC answers
    are judged only when trailers-only: a status in later trailers comes after the response began."""
    grpc_status = grpc.status_of(headers) if ex.grpc and end else None
    if ex.grpc and grpc_status is None and status == 200:
        return False
    if ex.replay is None or ex.attempts >= MAX_ATTEMPTS or not ex.plan.retry(status, grpc_status, elapsed_ms(ex)):
        return False
    ex._detach_up(reset=not end)
    again(ex)
    return True

def retry_reset(ex: Exchange) -> bool:
    """The upstream stream broke before a response on a retryable route: another attempt."""
    if ex.answered or ex.replay is None or ex.attempts >= MAX_ATTEMPTS:
        return False
    if not ex.plan.retry(502, 14 if ex.grpc else None, elapsed_ms(ex)):
        return False
    again(ex)
    return True

def elapsed_ms(ex: Exchange) -> float:
    return (ex.down.timers.time() - ex.started) * 1000.0

def retry_unsent(ex: Exchange, exc: BaseException | None = None) -> bool:
    """The request was never processed (refused stream, no connection, the peer proxy never reached its
    app): send it again, to another endpoint when `exc` says this one is unreachable, while its whole
    body is still at hand."""
    replay = ex.replay
    if replay is None or ex.answered or ex.attempts >= MAX_ATTEMPTS or not ex.plan.repick(exc):
        return False
    again(ex)
    return True

def again(ex: Exchange) -> None:
    """The next attempt: the request again from its first byte, on the endpoint the plan now holds."""
    replay = ex.replay
    ex.attempts += 1
    if replay:
        ex.req_q = [*replay, *(ex.req_q or ())]
        ex.noack += sum(map(len, replay))
    ex.replay = ()
    ex.req_sent_end = False
    ex.down.connector.connect(ex)

def expired(ex: Exchange) -> None:
    """The exchange's timer: the route's timeout or the client's own deadline passed."""
    ex.timer = None
    if not ex.done:
        if ex.own_deadline:
            fail(ex, DeadlineExceeded("the request's own deadline passed"))
        else:
            fail(ex, ResponseTimeout("the route's timeout passed"))

def fail(ex: Exchange, exc: BaseException) -> None:
    """Answer the client with the failure `exc` maps to and release both streams."""
    if ex.done:
        return
    if ex.up is None and isinstance(exc, NEVER_SENT) and retry_unsent(ex, exc):
        return
    answer_failure(ex, ex.plan.rescue(exc))

def answer_failure(ex: Exchange, failure: Failure) -> None:
    """The failure as the response: trailers-only for gRPC, a status and body otherwise, a reset once a
    body was under way."""
    ex._detach_up(reset=True)
    if ex.timer is not None:
        ex.timer.cancel()
        ex.timer = None
    down, sid = ex.down.side, ex.sid
    ex.resp_q.clear()  # upstream bytes not yet forwarded: their credit went back in _detach_up
    ex.resp_end = True
    if ex.grpc:
        ex.grpc_status = failure.grpc_status
        if ex.answered:
            ex.resp_trailers = grpc.error_trailers(failure.grpc_status, failure.text, failure.reason)
        else:
            answered_now(ex, 200)
            block = grpc.trailers_only(failure.grpc_status, failure.text, failure.reason)
            down.send_headers(sid, block, end_stream=True)
            ex.resp_sent_end = True
    elif ex.answered:
        down.reset(sid, ErrorCode.INTERNAL_ERROR)  # a body was under way: only a reset tells the client
        ex.resp_sent_end = True
    else:
        answered_now(ex, failure.http_status)
        headers, body = grpc.plain_response(failure.http_status, failure.reason, failure.text)
        down.send_headers(sid, headers)
        ex.resp_q.append(body)
    ex.pump_response()

def answered_now(ex: Exchange, status: int) -> None:
    ex.answered = True
    ex.status = status
    ex.latency_ms = (ex.down.timers.time() - ex.started) * 1000.0


def not_delivered(headers: Block) -> bool:
    """The peer proxy answered for an app it never reached (its `mesh-proxy-error` says so)."""
    for name, value in headers:
        if name == PROXY_ERROR_HEADER:
            return value in NOT_DELIVERED
    return False
