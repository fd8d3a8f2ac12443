"""Failures a client is told about. Each carries the code and fixed sentence it sees and the
HTTP status it maps to, so no transport needs to know which module raised it."""

from __future__ import annotations


class ClientError(Exception):
    """`str(error)` is a fixed sentence that is safe to show a client; never exception text."""

    code = "internal"
    message = "Something went wrong while classifying this snapshot."
    http_status = 500

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.message)


class BadMessage(ClientError):
    code, message, http_status = "bad_message", "That message is not one this server understands.", 400


class BadRequest(ClientError):
    code, message, http_status = "bad_request", "That request is not one this server understands.", 400


class TooLarge(ClientError):
    code, message, http_status = "too_large", "The image is larger than this server accepts.", 413


class Refusal(ClientError):
    """A request refused for a reason named where it is refused (a full room, a wrong code)."""

    http_status = 400

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
