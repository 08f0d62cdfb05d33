"""The ``google.longrunning.Operations`` service: long-running operations (batch creates) are
done when answered; GetOperation reads one back, as client libraries do while polling."""

from __future__ import annotations

import collections
import uuid
from typing import Any

import grpc
from google.longrunning import operations_pb2
from google.protobuf import any_pb2

from .faults import Faults
from .rpc import Handler, RpcError, service_handler

__all__ = ["Operations"]

# Operations are kept in memory, the newest this many (not across restarts).
_KEPT = 10_000


class Operations:
    """Finished operations by name, and by the ``request_id`` that made each (for retries)."""

    name = "google.longrunning.Operations"

    def __init__(self) -> None:
        self._by_name: collections.OrderedDict[str, Any] = collections.OrderedDict()
        self._by_request: dict[str, str] = {}


    def forget(self) -> None:
        """Forget every operation (and the request ids that named them)."""
        self._by_name.clear()
        self._by_request.clear()
    def handler(self, faults: Faults) -> grpc.GenericRpcHandler:
        """The gRPC handler serving GetOperation."""
        methods: dict[str, tuple[Any, Handler]] = {
            "GetOperation": (operations_pb2.GetOperationRequest, self.get_operation),
        }
        return service_handler(self.name, methods, faults)

    def find(self, request_id: str) -> Any | None:
        """The operation an earlier request with ``request_id`` made, if any."""
        name = self._by_request.get(request_id) if request_id else None
        return self._by_name.get(name) if name is not None else None

    def finish(self, parent: str, request_id: str, response: Any, metadata: Any) -> Any:
        """Record a done operation under ``parent`` (``projects/P/locations/L``)."""
        op = operations_pb2.Operation(name=f"{parent}/operations/{uuid.uuid4().hex}", done=True)
        op.response.CopyFrom(_pack(response))
        op.metadata.CopyFrom(_pack(metadata))
        self._by_name[op.name] = op
        if request_id:
            self._by_request[request_id] = op.name
        while len(self._by_name) > _KEPT:
            self._by_name.popitem(last=False)
        if len(self._by_request) > 2 * _KEPT:
            self._by_request = {r: n for r, n in self._by_request.items() if n in self._by_name}
        return op

    async def get_operation(self, request: Any) -> Any:
        op = self._by_name.get(request.name)
        if op is None:
            raise RpcError(grpc.StatusCode.NOT_FOUND, f"operation {request.name} does not exist")
        return op


def _pack(message: Any) -> Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed
