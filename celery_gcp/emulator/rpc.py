"""Glue between gRPC and the services: method tables, errors, and fault injection."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from ..exceptions import EmulatorError
from .faults import Faults
from .names import InvalidName

__all__ = ["RpcError", "service_handler"]

Handler = Callable[[Any], Awaitable[Any]]


class RpcError(EmulatorError):
    """Ends an RPC with a gRPC status code, as the real service would answer."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def service_handler(service: str, methods: dict[str, tuple[Any, Handler]],
                    faults: Faults) -> grpc.GenericRpcHandler:
    """A generic handler for ``service``; ``methods`` maps name -> (request class, coroutine).

    Requests and responses are the raw protobuf messages of the official client libraries.
    """
    table = {
        name: grpc.unary_unary_rpc_method_handler(
            _wrap(name, handler, faults),
            request_deserializer=functools.partial(_parse, request_class),
            response_serializer=_serialize,
        )
        for name, (request_class, handler) in methods.items()
    }
    return grpc.method_handlers_generic_handler(service, table)


class _Unparsable:
    """A request that is not the method's message: answered ``INVALID_ARGUMENT``, as the
    services answer it (gRPC's own answer to a failed parse is ``UNKNOWN``)."""

    def __init__(self, error: Exception) -> None:
        self.error = error


def _parse(request_class: Any, data: bytes) -> Any:
    try:
        return request_class.FromString(data)
    except Exception as exc:  # protobuf's DecodeError, or a message it cannot build
        return _Unparsable(exc)


def _serialize(message: Any) -> bytes:
    return message.SerializeToString()  # type: ignore[no-any-return]


def _wrap(name: str, handler: Handler, faults: Faults) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(handler)
    async def call(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        if isinstance(request, _Unparsable):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                f"{name}: the request is not a valid message: {request.error}")
        fault = faults.take_rpc(name)
        if fault is not None and not fault.after:
            await context.abort(fault.code, fault.message)
        try:
            response = await handler(request)
        except RpcError as exc:
            await context.abort(exc.code, exc.message)
        except InvalidName as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        if fault is not None:
            await context.abort(fault.code, fault.message)
        return response

    return call
