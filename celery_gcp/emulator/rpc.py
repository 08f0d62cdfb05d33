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
            request_deserializer=request_class.FromString,
            response_serializer=_serialize,
        )
        for name, (request_class, handler) in methods.items()
    }
    return grpc.method_handlers_generic_handler(service, table)


def _serialize(message: Any) -> bytes:
    return message.SerializeToString()  # type: ignore[no-any-return]


def _wrap(name: str, handler: Handler, faults: Faults) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(handler)
    async def call(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
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
