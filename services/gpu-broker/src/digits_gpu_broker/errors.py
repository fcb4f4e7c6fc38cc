"""Refusals the broker sends back (domain errors carrying an HTTP status and the form field)."""

from __future__ import annotations

from digits_proto.runtime import Conflict, DomainError, NotFound


class GpuBrokerError(DomainError):
    """Base of every gpu-broker refusal."""


class UnknownDevice(GpuBrokerError):
    """A device index the node does not have (DIGITS field `select_gpus`)."""

    def __init__(self, message: str):
        super().__init__(message, field="select_gpus")


class TooManyDevices(GpuBrokerError):
    """More devices asked for than the node has (DIGITS field `select_gpu_count`)."""

    def __init__(self, message: str):
        super().__init__(message, field="select_gpu_count")


class DevicesBusy(Conflict, GpuBrokerError):
    """Some requested device is leased to someone else right now."""

    def __init__(self, message: str = "devices busy"):
        super().__init__(message)


class LeaseNotFound(NotFound, GpuBrokerError):
    """No live lease with that id (never granted, released or expired)."""

    def __init__(self, lease_id: str):
        super().__init__(f"lease {lease_id} not found (released or expired)", field="lease_id")


class NotHolder(Conflict, GpuBrokerError):
    """The lease belongs to another holder."""

    def __init__(self, lease_id: str):
        super().__init__(f"lease {lease_id} is held by someone else", field="holder")
