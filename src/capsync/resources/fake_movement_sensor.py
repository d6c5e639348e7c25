"""``fake`` movement sensor: a vehicle driving a slow circle, as viam's response messages."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any, NamedTuple

from .base import Resource, ResourceContext, capture_method
from .registry import register

_CENTER_LAT_DEG = 40.7
_CENTER_LNG_DEG = -73.98
_RADIUS_M = 50.0
_LAP_S = 120.0
_METERS_PER_DEG_LAT = 111_320.0
_GRAVITY_MPS2 = 9.80665


class _State(NamedTuple):
    lat_deg: float
    lng_deg: float
    altitude_m: float
    velocity_mps: tuple[float, float, float]
    angular_velocity_dps: tuple[float, float, float]
    acceleration_mps2: tuple[float, float, float]
    heading_deg: float


def _theta_deg(heading_deg: float) -> float:
    """Orientation-vector theta: rotation about +z, counter-clockwise, from a compass heading."""
    return (-heading_deg) % 360.0


def _vector(v: tuple[float, float, float]) -> dict[str, float]:
    return {"x": v[0], "y": v[1], "z": v[2]}


@register("rdk:component:movement_sensor", "fake")
class FakeMovementSensor(Resource):
    """Position, velocities, acceleration, heading and orientation that change over time."""

    def __init__(self, name: str, attributes: Mapping[str, Any], context: ResourceContext) -> None:
        super().__init__(name, attributes, context)
        self._start_s = time.monotonic()

    def _state(self) -> _State:
        t_s = time.monotonic() - self._start_s
        omega = 2.0 * math.pi / _LAP_S  # rad/s
        angle = omega * t_s
        north_m, east_m = _RADIUS_M * math.cos(angle), _RADIUS_M * math.sin(angle)
        lat = _CENTER_LAT_DEG + north_m / _METERS_PER_DEG_LAT
        lng = _CENTER_LNG_DEG + east_m / (_METERS_PER_DEG_LAT * math.cos(math.radians(lat)))
        speed = omega * _RADIUS_M
        # Bearing from the centre is ``angle`` (clockwise from north), so the vehicle turns
        # clockwise seen from above. Body frame: x forward, y left, z up.
        heading = math.degrees(angle + math.pi / 2.0) % 360.0
        return _State(
            lat_deg=lat,
            lng_deg=lng,
            altitude_m=50.0 + 2.0 * math.sin(angle * 3.0),
            velocity_mps=(speed, 0.0, 6.0 * omega * math.cos(angle * 3.0)),
            angular_velocity_dps=(0.0, 0.0, -math.degrees(omega)),
            acceleration_mps2=(0.0, -speed * omega, _GRAVITY_MPS2),
            heading_deg=heading,
        )

    @capture_method("Position")
    def position(self, params: Mapping[str, Any]) -> dict[str, Any]:
        s = self._state()
        return {
            "coordinate": {"latitude": s.lat_deg, "longitude": s.lng_deg},
            "altitude_m": s.altitude_m,
        }

    @capture_method("LinearVelocity")
    def linear_velocity(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return {"linear_velocity": _vector(self._state().velocity_mps)}

    @capture_method("AngularVelocity")
    def angular_velocity(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return {"angular_velocity": _vector(self._state().angular_velocity_dps)}

    @capture_method("LinearAcceleration")
    def linear_acceleration(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return {"linear_acceleration": _vector(self._state().acceleration_mps2)}

    @capture_method("CompassHeading")
    def compass_heading(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return {"value": self._state().heading_deg}

    @capture_method("Orientation")
    def orientation(self, params: Mapping[str, Any]) -> dict[str, Any]:
        theta = _theta_deg(self._state().heading_deg)
        return {"orientation": {"o_x": 0.0, "o_y": 0.0, "o_z": 1.0, "theta": theta}}

    @capture_method("Readings")
    def readings(self, params: Mapping[str, Any]) -> dict[str, Any]:
        # Same keys and "_type" tags as viam's movementsensor.DefaultAPIReadings.
        s = self._state()
        return {
            "position": {"lat": s.lat_deg, "lng": s.lng_deg, "_type": "geopoint"},
            "altitude": s.altitude_m,
            "linear_velocity": {**_vector(s.velocity_mps), "_type": "vector3"},
            "angular_velocity": {**_vector(s.angular_velocity_dps), "_type": "angular_velocity"},
            "linear_acceleration": {**_vector(s.acceleration_mps2), "_type": "vector3"},
            "compass": s.heading_deg,
            "orientation": {
                "ox": 0.0,
                "oy": 0.0,
                "oz": 1.0,
                "theta": _theta_deg(s.heading_deg),
                "_type": "orientation_vector_degrees",
            },
        }
