"""The ``google.cloud.location.Locations`` service both clients offer (``list_locations``,
``get_location``): the locations in use, those of the emulator's queues and jobs."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import grpc
from google.cloud.location import locations_pb2

from .faults import Faults
from .names import parent_of
from .rpc import Handler, RpcError, service_handler

__all__ = ["LocationsService"]


class LocationsService:
    """Lists the locations (``projects/P/locations/L``) that hold a queue or a job."""

    name = "google.cloud.location.Locations"

    def __init__(self, resources: Callable[[], Iterable[str]]) -> None:
        self._resources = resources  # the names of every queue and job

    def handler(self, faults: Faults) -> grpc.GenericRpcHandler:
        """The gRPC handler serving ListLocations and GetLocation."""
        methods: dict[str, tuple[Any, Handler]] = {
            "ListLocations": (locations_pb2.ListLocationsRequest, self.list_locations),
            "GetLocation": (locations_pb2.GetLocationRequest, self.get_location),
        }
        return service_handler(self.name, methods, faults)

    def _in_use(self) -> list[str]:
        return sorted({parent_of(name) for name in self._resources()})

    async def list_locations(self, request: Any) -> Any:
        prefix = f"{request.name.rstrip('/')}/locations/"
        return locations_pb2.ListLocationsResponse(locations=[
            _location(name) for name in self._in_use() if name.startswith(prefix)])

    async def get_location(self, request: Any) -> Any:
        if request.name not in self._in_use():
            raise RpcError(grpc.StatusCode.NOT_FOUND,
                           f"location {request.name} holds no queue or job")
        return _location(request.name)


def _location(name: str) -> Any:
    location_id = name.rsplit("/", 1)[1]
    return locations_pb2.Location(name=name, location_id=location_id, display_name=location_id)
