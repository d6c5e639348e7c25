"""Capture from resources on remote parts (``remotes[]``) over Viam's gRPC API."""

from __future__ import annotations

from .connection import POOL, RemoteCallError, RemoteConnection, RemoteSettings
from .resources import REMOTE_MODEL, RemoteResource, build_remote_resource, remote_resource_config

__all__ = [
    "POOL",
    "REMOTE_MODEL",
    "RemoteCallError",
    "RemoteConnection",
    "RemoteResource",
    "RemoteSettings",
    "build_remote_resource",
    "remote_resource_config",
]
