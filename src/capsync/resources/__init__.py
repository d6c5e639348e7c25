"""Resources whose methods capsync captures: the model registry and the built-in models.

Built-in models (registered on import):

=============================== =========== =========================================
API                             model       what it serves
=============================== =========== =========================================
rdk:component:sensor            fake        Readings of sines over configurable keys
rdk:component:sensor            replay      Readings from the rows of a CSV file
rdk:component:sensor            host        Readings of this machine (psutil)
rdk:component:sensor            wifi-rssi   Readings from /proc/net/wireless
rdk:component:movement_sensor   fake        Position, velocities, heading, ...
rdk:component:board             fake        Analogs, Gpios
rdk:component:camera            fake        ReadImage, GetImages, NextPointCloud
rdk:component:camera            image_dir   the image/PCD files of a folder in turn
rdk:component:camera            filtered    another camera's frames, only when a vision
                                            service finds something
rdk:service:vision              color_detector  boxes around regions of one color
rdk:service:vision              color_histogram_classifier  labels from a model file
=============================== =========== =========================================

Users add models with ``@register("rdk:component:sensor", "acme:sensors:thermo")`` on a
:class:`Resource` subclass, or name a class in the config as
``"model": "python:my_pkg.sensors:Thermo"``.
"""

from __future__ import annotations

from . import (  # noqa: F401  (imported to register the built-in models)
    fake_board,
    fake_camera,
    fake_movement_sensor,
    fake_sensor,
    filtered_camera,
    host_sensor,
    image_dir_camera,
    replay_sensor,
    vision_service,
    wifi_sensor,
)
from .base import Resource, ResourceContext, capture_method
from .errors import (
    DataUnavailableError,
    EndOfData,
    ModelImportError,
    NoCaptureToStore,
    ResourceConfigError,
    ResourceError,
    UnknownModelError,
    UnknownTypeError,
    UnsupportedMethodError,
)
from .registry import (
    api_for_type,
    build_resource,
    known_models,
    normalize_api,
    normalize_model,
    register,
    resource_class,
    unregister,
)
from .results import (
    BINARY_METHODS,
    MIME_JPEG,
    MIME_PCD,
    MIME_PNG,
    TABULAR_METHODS,
    BinaryResult,
    CaptureResult,
    is_binary_method,
    normalize_mime_type,
)
from .vision_service import VisionModel

__all__ = [
    "BINARY_METHODS",
    "MIME_JPEG",
    "MIME_PCD",
    "MIME_PNG",
    "TABULAR_METHODS",
    "BinaryResult",
    "CaptureResult",
    "DataUnavailableError",
    "EndOfData",
    "ModelImportError",
    "NoCaptureToStore",
    "Resource",
    "ResourceConfigError",
    "ResourceContext",
    "ResourceError",
    "UnknownModelError",
    "UnknownTypeError",
    "UnsupportedMethodError",
    "VisionModel",
    "api_for_type",
    "build_resource",
    "capture_method",
    "is_binary_method",
    "known_models",
    "normalize_api",
    "normalize_mime_type",
    "normalize_model",
    "register",
    "resource_class",
    "unregister",
]
